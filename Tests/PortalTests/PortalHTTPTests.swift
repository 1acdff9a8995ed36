import Foundation
import JWTKit
import StreamgatePluginAPI
@testable import StreamgatePortal
import Testing

let liveScores: JSONValue = apiJSON("live-scores", [
    endpointJSON("/scores/live/{sport}", "scores", "live/{sport}", ["subscribe", "publish"]),
    endpointJSON("/scores/final/{sport}", "scores", "final/{sport}"),
], extra: ["description": "Live scores", "owner": "sports"])

@Suite("Portal REST API", .serialized)
struct PortalHTTPTests {
    @Test func loginSessionsAndRoles() async throws {
        try await PortalHarness.with { portal in
            let anonymous = try await portal.request("GET", "/api/v1/apis")
            #expect(anonymous.status == 401 && anonymous.json["error"]?["code"] == "unauthenticated")
            let wrong = try await portal.request("POST", "/api/v1/login", .object(["username": "admin", "password": "nope"]))
            #expect(wrong.status == 401 && wrong.json["error"]?["code"] == "bad_credentials")
            let missing = try await portal.request("POST", "/api/v1/login", .object(["username": "admin"]))
            #expect(missing.status == 400 && missing.json["error"]?["field"] == "password")

            let viewer = try await portal.login("viewer")
            #expect(try await portal.request("GET", "/api/v1/me", token: viewer).json["role"] == "viewer")
            #expect(try await portal.request("GET", "/api/v1/apis", token: viewer).status == 200)
            let refused = try await portal.request("POST", "/api/v1/apis", liveScores, token: viewer)
            #expect(refused.status == 403 && refused.json["error"]?["code"] == "forbidden")

            let admin = try await portal.login()
            let user = try await portal.request("POST", "/api/v1/users", .object(["username": "carol", "password": "long enough password", "role": "viewer"]), token: admin)
            #expect(user.status == 201)
            let short = try await portal.request("POST", "/api/v1/users", .object(["username": "dave", "password": "short"]), token: admin)
            #expect(short.status == 400 && short.json["error"]?["field"] == "password")
            #expect(try await portal.request("GET", "/api/v1/users", token: admin).json["users"]?.array.count == 3)

            #expect(try await portal.request("POST", "/api/v1/logout", token: viewer).status == 204)
            #expect(try await portal.request("GET", "/api/v1/me", token: viewer).status == 401, "a session ends at logout")
        }
    }

    @Test func repeatedFailedLoginsAreThrottled() async throws {
        try await PortalHarness.with { portal in
            for _ in 0..<LoginThrottle.allowed {
                #expect(try await portal.request("POST", "/api/v1/login", .object(["username": "viewer", "password": "guess"])).status == 401)
            }
            let throttled = try await portal.request("POST", "/api/v1/login", .object(["username": "viewer", "password": .string(PortalHarness.password)]))
            #expect(throttled.status == 429 && throttled.headers["retry-after"] != nil)
            #expect(try await portal.login("admin").hasPrefix("sgp_"), "other users are not affected")
        }
    }

    @Test func apisAreCreatedReplacedListedAndDeleted() async throws {
        try await PortalHarness.with { portal in
            let admin = try await portal.login()
            let created = try await portal.request("POST", "/api/v1/apis", liveScores, token: admin)
            #expect(created.status == 201 && created.headers["location"] == "/api/v1/apis/live-scores")
            #expect(try await portal.request("POST", "/api/v1/apis", liveScores, token: admin).status == 409)
            let fetched = try await portal.request("GET", "/api/v1/apis/live-scores", token: admin)
            #expect(fetched.json["endpoints"]?.array.count == 2 && fetched.json["owner"] == "sports")

            // An overlapping API is refused, naming the field.
            let clash = apiJSON("results", [endpointJSON("/scores/{kind}/tennis", "results", "x/{kind}")])
            let refused = try await portal.request("POST", "/api/v1/apis", clash, token: admin)
            #expect(refused.status == 400 && refused.json["error"]?["code"] == "invalid_field" && refused.json["error"]?["field"] == "endpoints[0].path")
            #expect(refused.json["error"]?["message"]?.string?.contains("live-scores") == true)
            let notJSON = try await portal.request("POST", "/api/v1/apis", .string("x"), token: admin)
            #expect(notJSON.status == 400)

            // PUT replaces (200) or creates (201); the name in the URL wins.
            let replaced = try await portal.request("PUT", "/api/v1/apis/live-scores",
                                                    apiJSON("live-scores", [endpointJSON("/scores/live/{sport}", "scores", "live/{sport}")]), token: admin)
            #expect(replaced.status == 200 && replaced.json["endpoints"]?.array.count == 1)
            let put = try await portal.request("PUT", "/api/v1/apis/news",
                                               .object(["endpoints": .array([.object(endpointJSON("/news/{desk}", "news", "{desk}"))])]), token: admin)
            #expect(put.status == 201 && put.json["name"] == "news")
            #expect(try await portal.request("GET", "/api/v1/apis", token: admin).json["apis"]?.array.count == 2)
            let newsToken = try await portal.request("POST", "/api/v1/apis/news/tokens", .object(["subject": "n", "subscribe": true]), token: admin)
            #expect(try await portal.request("DELETE", "/api/v1/apis/news", token: admin).status == 204)
            let afterDelete = try await portal.request("GET", "/api/v1/tokens/\(newsToken.json["id"]?.string ?? "")", token: admin)
            #expect(afterDelete.json["revoked_at"] != .null, "an API's tokens go with it: a new API of the same name does not inherit them")
            #expect(try await portal.request("DELETE", "/api/v1/apis/news", token: admin).status == 404)
            #expect(try await portal.request("GET", "/api/v1/apis/news", token: admin).json["error"]?["code"] == "not_found")
        }
    }

    @Test func tokensAreMintedListedAndRevokedAndGatewaysSeeIt() async throws {
        try await PortalHarness.with { portal in
            let admin = try await portal.login()
            _ = try await portal.request("POST", "/api/v1/apis", liveScores, token: admin)
            let minted = try await portal.request("POST", "/api/v1/apis/live-scores/tokens",
                                                  .object(["subject": "alice", "subscribe": true, "publish": .array(["/scores/live/tennis"]), "expires_in": 3600]),
                                                  token: admin)
            #expect(minted.status == 201)
            let token = try #require(minted.json["token"]?.string)
            let id = try #require(minted.json["id"]?.string)
            #expect(minted.json["subscribe"] == .array(["/scores/live/*", "/scores/final/*"]))
            let bad = try await portal.request("POST", "/api/v1/apis/live-scores/tokens",
                                               .object(["subject": "bob", "publish": .array(["/scores/final/x"])]), token: admin)
            #expect(bad.status == 400 && bad.json["error"]?["field"] == "publish[0]")

            // The gateway state: behind the cluster credential, with an ETag.
            #expect(try await portal.request("GET", "/api/v1/gateway/state").status == 401)
            #expect(try await portal.request("GET", "/api/v1/gateway/state", token: "wrong").status == 401)
            let state = try await portal.request("GET", "/api/v1/gateway/state", token: PortalHarness.credential)
            #expect(state.status == 200 && state.json["revoked"] == .array([]))
            #expect(state.json["apis"]?.array.first?["endpoints"]?.array.count == 2)
            let etag = try #require(state.headers["etag"])
            #expect(try await portal.request("GET", "/api/v1/gateway/state", token: PortalHarness.credential,
                                             headers: ["If-None-Match": etag]).status == 304)

            // The token verifies with the state's JWKS and carries the rights and the API.
            let keys = JWTKeyCollection()
            try await keys.add(jwksJSON: String(decoding: try JSONEncoder().encode(try #require(state.json["jwks"])), as: UTF8.self))
            let claims = try await keys.verify(token, as: Claims.self)
            #expect(claims.sub == "alice" && claims.api == "live-scores" && claims.jti == id && claims.iss == "streamgate-portal")
            #expect(claims.publish == ["/scores/live/tennis"])

            // Listing and searching; viewers may list, not revoke.
            let viewer = try await portal.login("viewer")
            #expect(try await portal.request("GET", "/api/v1/tokens?q=ali", token: viewer).json["tokens"]?.array.count == 1)
            #expect(try await portal.request("GET", "/api/v1/tokens?q=bob", token: viewer).json["tokens"]?.array.count == 0)
            #expect(try await portal.request("GET", "/api/v1/tokens/\(id)", token: viewer).json["subject"] == "alice")
            #expect(try await portal.request("DELETE", "/api/v1/tokens/\(id)", token: viewer).status == 403)
            #expect(try await portal.request("DELETE", "/api/v1/tokens/\(id)", token: admin).status == 204)
            #expect(try await portal.request("DELETE", "/api/v1/tokens/nope", token: admin).status == 404)

            let after = try await portal.request("GET", "/api/v1/gateway/state", token: PortalHarness.credential, headers: ["If-None-Match": etag])
            #expect(after.status == 200 && after.json["revoked"] == .array([.string(id)]), "a revocation moves the revision")
            #expect(try await portal.request("GET", "/api/v1/tokens/\(id)", token: viewer).json["revoked_at"] != .null)
        }
    }

    @Test func aRotatedKeyStaysInTheJwksWhileItsTokensLive() async throws {
        try await PortalHarness.with { portal in
            let admin = try await portal.login()
            _ = try await portal.request("POST", "/api/v1/apis", liveScores, token: admin)
            let old = try await portal.request("POST", "/api/v1/apis/live-scores/tokens", .object(["subject": "a", "subscribe": true]), token: admin)
            let rotated = try await portal.request("POST", "/api/v1/keys/rotate", token: admin)
            #expect(rotated.status == 201)
            let new = try await portal.request("POST", "/api/v1/apis/live-scores/tokens", .object(["subject": "b", "subscribe": true]), token: admin)
            #expect(old.json["key_id"] != new.json["key_id"] && new.json["key_id"] == rotated.json["signing_key"])
            let state = try await portal.request("GET", "/api/v1/gateway/state", token: PortalHarness.credential)
            let kids = state.json["jwks"]?["keys"]?.array.compactMap { $0["kid"]?.string } ?? []
            #expect(Set(kids) == Set([old.json["key_id"]?.string, new.json["key_id"]?.string].compactMap { $0 }))
            let keys = try await portal.request("GET", "/api/v1/keys", token: admin)
            #expect(keys.json["keys"]?.array.count == 2 && !"\(keys.json)".contains("PRIVATE"))
        }
    }

    /// A method a path does not answer gets 405 naming the ones it does; a
    /// path nothing answers gets a JSON 404.
    @Test func anUndeclaredMethodIs405WithAllowAndAnUnknownPathAJson404() async throws {
        try await PortalHarness.with { portal in
            let admin = try await portal.login()
            let patch = try await portal.request("PATCH", "/api/v1/apis", token: admin)
            #expect(patch.status == 405 && patch.headers["allow"] == "GET, POST" && patch.json["error"]?["code"] == "method_not_allowed")
            let post = try await portal.request("POST", "/api/v1/tokens/some-id", token: admin)
            #expect(post.status == 405 && post.headers["allow"] == "DELETE, GET")
            #expect(try await portal.request("PUT", "/healthz").headers["allow"] == "GET")
            let literal = try await portal.request("DELETE", "/api/v1/keys/rotate", token: admin)
            #expect(literal.status == 405 && literal.headers["allow"] == "POST", "the literal route is the one the router resolves")
            let missing = try await portal.request("GET", "/api/v1/nothing/here", token: admin)
            #expect(missing.status == 404 && missing.json["error"]?["code"] == "not_found")
            #expect(try await portal.request("GET", "/api/v1/apis", token: admin).status == 200, "declared methods are untouched")
        }
    }

    /// A leaked key is withdrawn: it leaves the JWKS at once (not when its
    /// last token expires), its tokens are revoked, and a new key signs.
    @Test func aWithdrawnKeyLeavesTheJwksAtOnceAndItsTokensAreRevoked() async throws {
        try await PortalHarness.with { portal in
            let admin = try await portal.login()
            _ = try await portal.request("POST", "/api/v1/apis", liveScores, token: admin)
            let first = try await portal.request("POST", "/api/v1/apis/live-scores/tokens", .object(["subject": "a", "subscribe": true]), token: admin)
            let second = try await portal.request("POST", "/api/v1/apis/live-scores/tokens", .object(["subject": "b", "subscribe": true]), token: admin)
            let leaked = try #require(first.json["key_id"]?.string)
            #expect(second.json["key_id"]?.string == leaked)
            let before = try await portal.request("GET", "/api/v1/gateway/state", token: PortalHarness.credential)
            let etag = try #require(before.headers["etag"])

            let viewer = try await portal.login("viewer")
            #expect(try await portal.request("DELETE", "/api/v1/keys/\(leaked)", token: viewer).status == 403)
            #expect(try await portal.request("DELETE", "/api/v1/keys/nope", token: admin).status == 404)
            let withdrawn = try await portal.request("DELETE", "/api/v1/keys/\(leaked)", token: admin)
            #expect(withdrawn.status == 200 && withdrawn.json["revoked_tokens"] == 2)
            let next = try #require(withdrawn.json["signing_key"]?.string)
            #expect(next != leaked)
            let again = try await portal.request("DELETE", "/api/v1/keys/\(leaked)", token: admin)
            #expect(again.status == 409 && again.json["error"]?["field"] == "id")

            let after = try await portal.request("GET", "/api/v1/gateway/state", token: PortalHarness.credential, headers: ["If-None-Match": etag])
            #expect(after.status == 200, "a withdrawal moves the revision")
            let kids = after.json["jwks"]?["keys"]?.array.compactMap { $0["kid"]?.string } ?? []
            #expect(kids == [next], "the withdrawn key is gone from the JWKS though its tokens have not expired")
            #expect(Set(after.json["revoked"]?.array.compactMap(\.string) ?? []) == Set([first.json["id"]?.string, second.json["id"]?.string].compactMap { $0 }))

            let minted = try await portal.request("POST", "/api/v1/apis/live-scores/tokens", .object(["subject": "c", "subscribe": true]), token: admin)
            #expect(minted.status == 201 && minted.json["key_id"]?.string == next)
            let listed = try await portal.request("GET", "/api/v1/keys", token: admin).json["keys"]?.array ?? []
            let entry = try #require(listed.first { $0["id"]?.string == leaked })
            #expect(entry["withdrawn_at"] != .null && entry["retired_at"] != .null)
        }
    }

    @Test func theDatabaseKeepsEverythingAcrossARestart() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("portal-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try await PortalHarness.start(databasePath: path)
        let admin = try await first.login()
        _ = try await first.request("POST", "/api/v1/apis", liveScores, token: admin)
        let minted = try await first.request("POST", "/api/v1/apis/live-scores/tokens", .object(["subject": "a", "subscribe": true]), token: admin)
        await first.stop()
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)
        // A second portal on the same file (its users were created again; their names exist: create says false).
        let database = try PortalDatabase(path: path)
        #expect(try await ApiStore(database: database).get("live-scores") != nil)
        #expect(try await TokenStore(database: database).get(try #require(minted.json["id"]?.string))?.subject == "a")
    }
}

struct Claims: JWTPayload {
    let sub: String
    let api: String
    let jti: String
    let iss: String
    let exp: Double
    let subscribe: [String]
    let publish: [String]
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
