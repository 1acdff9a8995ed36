import Foundation
import StreamgatePluginAPI
@testable import StreamgatePlugins
import Synchronization
import Testing

/// Collects what plugins log, so tests can read it.
final class CollectingLogger: PluginLogger {
    let lines = Mutex<[String]>([])
    func log(_ level: PluginLogLevel, _ message: String) { lines.withLock { $0.append(message) } }
    func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }
}

/// Waits until `condition` holds (polling), or fails after `seconds`.
func eventually(_ what: String, seconds: Double = 5, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw HarnessError("not within \(seconds) s: \(what)")
}

@Suite("A gateway's portal plugins following a real portal", .serialized)
struct GatewayFollowingTests {
    let stateFile = FileManager.default.temporaryDirectory.appendingPathComponent("portal-state-\(UUID().uuidString).json").path

    func options(_ portal: PortalHarness) -> ConfigSection {
        ConfigSection(path: "authorization.options", values: [
            "url": .string(portal.baseURL.absoluteString), "credential": .string(PortalHarness.credential),
            "state_file": .string(stateFile), "poll_seconds": .number(0.2),
        ])
    }

    func credentials(_ token: String) -> Credentials {
        Credentials(token: token, connection: ConnectionInfo(remoteAddress: "127.0.0.1:1", query: "", authorization: "", origin: ""))
    }

    @Test func mappingRightsRevocationAndARestartWithoutThePortal() async throws {
        defer { try? FileManager.default.removeItem(atPath: stateFile) }
        let logger = CollectingLogger()
        let context = PluginContext(logger: logger)
        try await PortalHarness.with { portal in
            let admin = try await portal.login()
            _ = try await portal.request("POST", "/api/v1/apis", liveScores, token: admin)
            _ = try await portal.request("POST", "/api/v1/apis", apiJSON("orders", [
                endpointJSON("/orders/{user}/{item}", "orders", "u-{user}/{item}", ["subscribe", "publish"]),
            ]), token: admin)
            let alice = try await portal.request("POST", "/api/v1/apis/live-scores/tokens", .object([
                "subject": "alice", "subscribe": true, "publish": .array(["/scores/live/tennis"]),
            ]), token: admin)
            let own = try await portal.request("POST", "/api/v1/apis/orders/tokens", .object([
                "subject": "alice", "subscribe": .array(["/orders/{sub}/**"]),
            ]), token: admin)

            let mapper = try PortalMapperFactory().makeMapper(options: options(portal), context: context)
            let authorizer = try PortalAuthorizerFactory().makeAuthorizer(options: options(portal), context: context)

            // Both directions of the mapping.
            #expect(try mapper.address(of: "/scores/live/tennis") == KafkaAddress(topic: "scores", key: "live/tennis"))
            #expect(try mapper.address(of: "/orders/alice/42") == KafkaAddress(topic: "orders", key: "u-alice/42"))
            #expect(throws: EndpointError.self) { try mapper.address(of: "/scores/half-time/tennis") }
            func endpoint(_ topic: String, _ key: String) -> String? {
                var key = key
                return key.withUTF8 { mapper.endpoint(topic: topic, key: UnsafeRawBufferPointer($0)) }
            }
            #expect(endpoint("scores", "final/golf") == "/scores/final/golf")
            #expect(endpoint("orders", "u-bob/7") == "/orders/bob/7")
            #expect(endpoint("scores", "half-time/golf") == nil)
            #expect(endpoint("other", "live/golf") == nil)

            // Rights: bounded by the API's endpoints and their actions, bound to claims.
            guard case .identified(let identity) = await authorizer.authenticate(credentials(try #require(alice.json["token"]?.string))) else {
                Issue.record("alice's token was not accepted")
                return
            }
            #expect(identity.subject == "alice")
            #expect(identity.rights.allows(.subscribe, "/scores/live/golf") && identity.rights.allows(.subscribe, "/scores/final/golf"))
            #expect(identity.rights.allows(.publish, "/scores/live/tennis") && !identity.rights.allows(.publish, "/scores/live/golf"))
            #expect(!identity.rights.allows(.subscribe, "/orders/alice/1"), "a token serves its own API only")
            guard case .identified(let owner) = await authorizer.authenticate(credentials(try #require(own.json["token"]?.string))) else {
                Issue.record("the per-user token was not accepted")
                return
            }
            #expect(owner.rights.allows(.subscribe, "/orders/alice/1") && !owner.rights.allows(.subscribe, "/orders/bob/1"))
            #expect(await authorizer.authenticate(credentials("not-a-jwt")) == .abstain)

            // Changing the API takes the publish right away at the next poll.
            let before = await authorizer.revision()
            _ = try await portal.request("PUT", "/api/v1/apis/live-scores", apiJSON("live-scores", [
                endpointJSON("/scores/live/{sport}", "scores", "live/{sport}"),
            ]), token: admin)
            try await eventually("the changed API applied") { await authorizer.revision() != before }
            guard case .identified(let narrowed) = await authorizer.authenticate(credentials(alice.json["token"]!.string!)) else {
                Issue.record("alice's token stopped working")
                return
            }
            #expect(!narrowed.rights.allows(.publish, "/scores/live/tennis") && narrowed.rights.allows(.subscribe, "/scores/live/x"))
            #expect(throws: EndpointError.self) { try mapper.address(of: "/scores/final/golf") }

            // Revoking: refused within one poll.
            _ = try await portal.request("DELETE", "/api/v1/tokens/\(alice.json["id"]!.string!)", token: admin)
            try await eventually("the revocation applied") {
                if case .denied(let reason) = await authorizer.authenticate(credentials(alice.json["token"]!.string!)) { return reason.contains("revoked") }
                return false
            }
        }

        // The portal is gone: a gateway starting now serves from the saved state, and says so.
        let restarted = PortalFollower(settings: PortalFollower.Settings(
            url: URL(string: "http://127.0.0.1:1")!, credential: PortalHarness.credential, stateFile: stateFile,
            pollSeconds: 60, timeoutSeconds: 0.5), logger: logger)
        restarted.start()
        defer { restarted.shutdown() }
        #expect(logger.contains("loaded the saved state"))
        #expect(logger.contains("unreachable"))
        let mapper = PortalMapper(follower: restarted)
        #expect(try mapper.address(of: "/scores/live/tennis") == KafkaAddress(topic: "scores", key: "live/tennis"))
        #expect(restarted.state?.revoked.isEmpty == false, "the revocation was saved too")
    }

    /// The portal's first token (or the first after a rotation) is signed by
    /// a key the gateway has not polled yet: it asks the portal at once.
    @Test func aTokenSignedByAKeyMadeSinceTheLastPollWorksAtOnce() async throws {
        defer { try? FileManager.default.removeItem(atPath: stateFile) }
        try await PortalHarness.with { portal in
            let admin = try await portal.login()
            _ = try await portal.request("POST", "/api/v1/apis", liveScores, token: admin)
            let options = ConfigSection(path: "authorization.options", values: [
                "url": .string(portal.baseURL.absoluteString), "credential": .string(PortalHarness.credential),
                "state_file": .string(stateFile), "poll_seconds": .number(300),
            ])
            let authorizer = try PortalAuthorizerFactory().makeAuthorizer(options: options, context: PluginContext(logger: CollectingLogger()))
            for round in 0..<2 {
                if round == 1 { _ = try await portal.request("POST", "/api/v1/keys/rotate", token: admin) }
                let minted = try await portal.request("POST", "/api/v1/apis/live-scores/tokens", .object(["subject": "new", "subscribe": true]), token: admin)
                let result = await authorizer.authenticate(credentials(try #require(minted.json["token"]?.string)))
                guard case .identified = result else {
                    Issue.record("round \(round): a token of a new key was refused: \(result)")
                    return
                }
                try await Task.sleep(for: .milliseconds(1100))  // refreshes are at most one a second
            }
        }
    }

    /// A withdrawn key's tokens are refused at the next poll, though they
    /// have not expired (the revision moves, so live connections are
    /// checked again), while the new key's tokens work.
    @Test func aWithdrawnKeysTokensAreRefusedAfterOnePoll() async throws {
        defer { try? FileManager.default.removeItem(atPath: stateFile) }
        try await PortalHarness.with { portal in
            let admin = try await portal.login()
            _ = try await portal.request("POST", "/api/v1/apis", liveScores, token: admin)
            let authorizer = try PortalAuthorizerFactory().makeAuthorizer(options: options(portal), context: PluginContext(logger: CollectingLogger()))
            let leaked = try await portal.request("POST", "/api/v1/apis/live-scores/tokens", .object(["subject": "a", "subscribe": true]), token: admin)
            let token = try #require(leaked.json["token"]?.string)
            guard case .identified = await authorizer.authenticate(credentials(token)) else {
                Issue.record("the token was refused before its key was withdrawn")
                return
            }
            // Verified once: checked again, it skips the signature (not the
            // claims); the same claims under another signature are not it.
            guard case .identified = await authorizer.authenticate(credentials(token)) else {
                Issue.record("the token was refused when checked again")
                return
            }
            #expect((authorizer as? PortalAuthorizer)?.verified.count == 1)
            let forged = String(token.dropLast(2)) + (token.hasSuffix("AA") ? "BB" : "AA")
            guard case .denied = await authorizer.authenticate(credentials(forged)) else {
                Issue.record("a token with another signature was accepted")
                return
            }
            let revision = await authorizer.revision()
            let keyID = try #require(leaked.json["key_id"]?.string)
            #expect(try await portal.request("DELETE", "/api/v1/keys/\(keyID)", token: admin).status == 200)
            try await eventually("the gateway polls the withdrawal") { await authorizer.revision() != revision }
            guard case .denied = await authorizer.authenticate(credentials(token)) else {
                Issue.record("a token of a withdrawn key was still accepted")
                return
            }
            let fresh = try await portal.request("POST", "/api/v1/apis/live-scores/tokens", .object(["subject": "b", "subscribe": true]), token: admin)
            guard case .identified = await authorizer.authenticate(credentials(try #require(fresh.json["token"]?.string))) else {
                Issue.record("the new key's token was refused")
                return
            }
        }
    }

    @Test func withNoPortalAndNothingSavedEverythingIsRefused() async throws {
        let logger = CollectingLogger()
        let follower = PortalFollower(settings: PortalFollower.Settings(
            url: URL(string: "http://127.0.0.1:1")!, credential: "x", stateFile: stateFile, pollSeconds: 60, timeoutSeconds: 0.5),
            logger: logger)
        follower.start()
        defer { follower.shutdown() }
        #expect(logger.contains("no state yet"))
        #expect(throws: EndpointError.self) { try PortalMapper(follower: follower).address(of: "/scores/live/tennis") }
        let authorizer = PortalAuthorizer(follower: follower, leewaySeconds: 30)
        let result = await authorizer.authenticate(credentials("eyJhbGciOiJFUzI1NiJ9.e30.sig"))
        guard case .denied = result else {
            Issue.record("expected a denial, got \(result)")
            return
        }
    }
}
