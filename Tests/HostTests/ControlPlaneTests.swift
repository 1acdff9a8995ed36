import CFanout
import Foundation
import StreamgatePluginAPI
import Testing

@testable import streamgate

/// The control plane against a fake fan-out (`FakeFanout`): subscribe,
/// unsubscribe and their authorization, rights narrowed by an in-band
/// `auth`, revocation and expiry, publish rate limiting, and requests sent
/// before authentication ended. Every test reads what a connection would
/// receive, in order.
@Suite("Control plane against a fake fan-out")
struct ControlPlaneTests {
    static func identity(_ subject: String, subscribe: [String], publish: [String] = [], expiresAt: Double? = nil) throws
        -> Identity
    {
        Identity(subject: subject, rights: try Rights(subscribePatterns: subscribe, publishPatterns: publish),
                 expiresAt: expiresAt)
    }

    @Test func subscribeIsAcknowledgedBeforeDeliveriesAndUnsubscribeEndsThem() async throws {
        let h = ControlPlaneHarness(tokens: ["a": try Self.identity("a", subscribe: ["/t/*"])])
        try await h.connect(1, token: "a")
        h.send(1, #"{"type":"subscribe","endpoint":"/t/k","id":7}"#)
        #expect(h.fanout.isSubscribed(1, to: "/t/k"))
        h.produce(["k", "other", "k"])
        h.send(1, #"{"type":"unsubscribe","endpoint":"/t/k"}"#)
        h.produce(["k"])
        #expect(h.fanout.events(1).dropFirst() == [
            .text(#"{"type":"subscribed","endpoint":"/t/k","id":7}"#),
            .subscribed("/t/k"),
            .delivery(endpoint: "/t/k", seq: 0, snapshot: false),
            .delivery(endpoint: "/t/k", seq: 2, snapshot: false),
            .unsubscribed("/t/k"),
            .text(#"{"type":"unsubscribed","endpoint":"/t/k"}"#),
        ])
    }

    /// A partition that restarts under a new epoch (its log was replaced):
    /// live subscribers of endpoints with messages of the old log cached are
    /// told before the new log's first message; a restart in the same epoch
    /// and an endpoint with nothing cached tell nobody.
    @Test func aReplacedLogIsAStaleEpochNoticeToLiveSubscribers() async throws {
        let h = ControlPlaneHarness()
        try await h.connect(1)
        h.send(1, #"{"type":"subscribe","endpoint":"/t/k"}"#)
        h.send(1, #"{"type":"subscribe","endpoint":"/t/quiet"}"#)
        h.produce(["k", "k"])
        h.router.partitionStarted(PartitionStart(topic: "t", partition: 0, epoch: MemoryLogSource.epoch, offset: 2))
        let before = h.fanout.events(1).count
        h.router.partitionStarted(PartitionStart(topic: "t", partition: 0, epoch: "E2", offset: 0))
        let notices = h.fanout.events(1).dropFirst(before)
        #expect(notices.count == 1)
        let notice = try #require(notices.first.flatMap { if case .text(let t) = $0 { t } else { nil } })
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(notice.utf8)) as? [String: Any])
        #expect(fields["type"] as? String == "notice" && fields["code"] as? String == "stale_epoch")
        #expect(fields["endpoint"] as? String == "/t/k")
        #expect(fields["epoch"] as? String == MemoryLogSource.epoch && fields["current_epoch"] as? String == "E2")
        #expect((fields["message"] as? String)?.contains("replaced") == true)
    }

    @Test func refusedSubscribesAreErrorsAndTheConnectionStaysUsable() async throws {
        var settings = ControlPlane.Settings()
        settings.maxSubscriptionsPerConnection = 2
        let h = ControlPlaneHarness(tokens: ["a": try Self.identity("a", subscribe: ["/t/*"])], settings: settings)
        try await h.connect(1, token: "a")
        h.send(1, #"{"type":"subscribe","endpoint":"/t/a/b"}"#)  // key "a/b": not one segment
        h.send(1, #"{"type":"subscribe","endpoint":"/nope/k"}"#)
        h.send(1, #"{"type":"subscribe","endpoint":"t"}"#)
        h.send(1, #"{"type":"subscribe","endpoint":"/t/1"}"#)
        h.send(1, #"{"type":"subscribe","endpoint":"/t/1"}"#)  // again: acknowledged, not doubled
        h.send(1, #"{"type":"subscribe","endpoint":"/t/2"}"#)
        h.send(1, #"{"type":"subscribe","endpoint":"/t/3"}"#)
        let answers = h.replies(1).dropFirst().map { ($0["type"] as! String) + " " + (($0["code"] as? String) ?? ($0["endpoint"] as! String)) }
        #expect(answers == [
            "error forbidden", "error unknown_topic", "error invalid_endpoint",
            "subscribed /t/1", "subscribed /t/1", "subscribed /t/2", "error too_many_subscriptions",
        ])
        #expect(h.control.subscriptions.refusedOverLimit == 1)
        #expect(h.fanout.events(1).filter { if case .subscribed = $0 { true } else { false } }.count == 2)
    }

    @Test func anAuthWithNarrowerRightsEndsTheSubscriptionsItNoLongerAllows() async throws {
        let h = ControlPlaneHarness(tokens: [
            "wide": try Self.identity("u", subscribe: ["/t/*"]),
            "narrow": try Self.identity("u", subscribe: ["/t/a"]),
        ])
        try await h.connect(1, token: "wide")
        h.send(1, #"{"type":"subscribe","endpoint":"/t/a"}"#)
        h.send(1, #"{"type":"subscribe","endpoint":"/t/b"}"#)
        h.send(1, #"{"type":"auth","token":"bogus","id":1}"#)
        try await h.waitUntil("the refusal") { !h.replies(1, type: "error").isEmpty }
        #expect(h.replies(1, type: "error").first?["code"] as? String == "unauthorized")
        #expect(h.fanout.isSubscribed(1, to: "/t/b"), "a refused token leaves the connection as it was")
        h.send(1, #"{"type":"auth","token":"narrow","id":2}"#)
        try await h.waitUntil("the new identity") { !h.replies(1, type: "authenticated").isEmpty }
        #expect(h.fanout.isSubscribed(1, to: "/t/a"))
        #expect(!h.fanout.isSubscribed(1, to: "/t/b"))
        let tail = Array(h.fanout.events(1).suffix(3))
        #expect(tail.count == 3)
        #expect(tail[0] == .text(#"{"type":"authenticated","subject":"u","expires_at":null,"id":2}"#))
        #expect(tail[1] == .unsubscribed("/t/b"))
        guard case .text(let revoked) = tail[2] else { Issue.record("no revoked notice"); return }
        #expect(revoked.contains(#""type":"unsubscribed","endpoint":"/t/b","reason":"the new token's rights do not include subscribe on /t/b""#))
    }

    @Test func aRevokedTokenEndsEverySubscriptionOrClosesWhenSoConfigured() async throws {
        for close in [false, true] {
            var settings = ControlPlane.Settings()
            settings.authentication.closeOnTokenExpiry = close
            let h = ControlPlaneHarness(tokens: ["a": try Self.identity("a", subscribe: ["/**"])], settings: settings)
            try await h.connect(1, token: "a")
            h.send(1, #"{"type":"subscribe","endpoint":"/t/x"}"#)
            await h.control.upkeep.upkeep()  // first look: revisions noted
            h.authorizer.set("a", nil)
            await h.control.upkeep.upkeep()
            let error = try #require(h.replies(1, type: "error").first)
            #expect(error["code"] as? String == "unauthorized")
            #expect((error["message"] as? String)?.hasPrefix("credentials revoked") == true)
            #expect(!h.fanout.isSubscribed(1, to: "/t/x"))
            if close {
                #expect(h.fanout.events(1).last == .closed(code: UInt16(CF_CLOSE_POLICY_VIOLATION), reason: "credentials revoked"))
            } else {
                #expect(h.replies(1, type: "unsubscribed").first?["endpoint"] as? String == "/t/x")
                h.send(1, #"{"type":"subscribe","endpoint":"/t/y"}"#)
                #expect(h.replies(1, type: "error").last?["code"] as? String == "forbidden", "revoked rights are no rights")
            }
        }
    }

    /// What the metrics read: connections welcomed and refused at their
    /// first authentication, credentials revoked later.
    @Test func authenticationsAndRevocationsAreCounted() async throws {
        let h = ControlPlaneHarness(tokens: ["a": try Self.identity("a", subscribe: ["/**"])])
        try await h.connect(1, token: "a")
        h.open(2, token: "forged")
        try await h.waitUntil("the refusal") { h.control.authenticator.connectionsRefused == 1 }
        #expect(h.control.authenticator.connectionsWelcomed == 1)
        await h.control.upkeep.upkeep()
        h.authorizer.set("a", nil)
        await h.control.upkeep.upkeep()
        #expect(h.control.authenticator.credentialsRevoked == 1 && h.control.authenticator.credentialsExpired == 0)
    }

    /// A revocation published between a connection's decision and the
    /// upkeep's first look (the gateway's first second) still takes effect.
    @Test func theFirstUpkeepChecksEveryConnectionDecidedBeforeIt() async throws {
        let h = ControlPlaneHarness(tokens: ["a": try Self.identity("a", subscribe: ["/**"]), "b": try Self.identity("b", subscribe: ["/**"])])
        try await h.connect(1, token: "a")
        try await h.connect(2, token: "b")
        h.send(1, #"{"type":"subscribe","endpoint":"/t/x"}"#)
        h.send(2, #"{"type":"subscribe","endpoint":"/t/x"}"#)
        h.authorizer.set("a", nil)
        await h.control.upkeep.upkeep()
        #expect((h.replies(1, type: "error").first?["message"] as? String)?.hasPrefix("credentials revoked") == true)
        #expect(!h.fanout.isSubscribed(1, to: "/t/x"))
        #expect(h.replies(2, type: "error").isEmpty && h.fanout.isSubscribed(2, to: "/t/x"), "a still valid token keeps its subscriptions")
    }

    /// A revocation published while a connection's decision is under way
    /// (looked up before it, answered after an upkeep look) is caught at the
    /// next look: the connection records the revision its decision began at.
    @Test func aRevocationDuringADecisionIsCaughtAtTheNextLook() async throws {
        let h = ControlPlaneHarness(tokens: ["a": try Self.identity("a", subscribe: ["/**"]), "b": try Self.identity("b", subscribe: ["/**"])])
        try await h.connect(2, token: "b")
        h.send(2, #"{"type":"subscribe","endpoint":"/t/x"}"#)
        await h.control.upkeep.upkeep()
        h.authorizer.heldToken.withLock { $0 = "a" }
        let before = h.authorizer.lookups.load(ordering: .acquiring)
        h.open(1, token: "a")
        try await h.waitUntil("the lookup") { h.authorizer.lookups.load(ordering: .acquiring) > before }
        h.authorizer.set("a", nil)
        await h.control.upkeep.upkeep()  // sees the new revision; connection 1 is not decided yet
        h.authorizer.heldToken.withLock { $0 = nil }
        try await h.waitUntil("welcome") { h.fanout.texts(1).contains { $0.contains("\"welcome\"") } }
        h.send(1, #"{"type":"subscribe","endpoint":"/t/x"}"#)
        #expect(h.fanout.isSubscribed(1, to: "/t/x"), "welcomed on the state it looked at")
        await h.control.upkeep.upkeep()
        #expect((h.replies(1, type: "error").first?["message"] as? String)?.hasPrefix("credentials revoked") == true)
        #expect(!h.fanout.isSubscribed(1, to: "/t/x"))
        #expect(h.replies(2, type: "error").isEmpty && h.fanout.isSubscribed(2, to: "/t/x"), "a connection decided on the current revision is left alone")
    }

    @Test func anExpiringTokenIsWarnedThenItsSubscriptionsEnd() async throws {
        let now = Date().timeIntervalSince1970
        let h = ControlPlaneHarness(tokens: ["a": try Self.identity("a", subscribe: ["/**"], expiresAt: now + 100)])
        try await h.connect(1, token: "a")
        h.send(1, #"{"type":"subscribe","endpoint":"/t/x"}"#)
        await h.control.upkeep.upkeep(now: now)
        #expect(h.replies(1, type: "token_expiring").isEmpty)
        await h.control.upkeep.upkeep(now: now + 75)  // inside the 30 s warning
        await h.control.upkeep.upkeep(now: now + 76)
        #expect(h.replies(1, type: "token_expiring").count == 1, "warned once")
        await h.control.upkeep.upkeep(now: now + 101)
        #expect(h.replies(1, type: "error").first?["code"] as? String == "token_expired")
        #expect(!h.fanout.isSubscribed(1, to: "/t/x"))
        #expect(h.control.authenticator.credentialsExpired == 1 && h.control.authenticator.credentialsRevoked == 0)
    }

    @Test func publishesAreAuthorizedRateLimitedAndAnsweredWithTheirOffset() async throws {
        var settings = ControlPlane.Settings()
        settings.publish = .init(headers: true, ratePerSecond: 1, burst: 3)
        let h = ControlPlaneHarness(tokens: ["p": try Self.identity("p", subscribe: [], publish: ["/t/mine"])],
                                    settings: settings)
        try await h.connect(1, token: "p")
        h.send(1, #"{"type":"publish","endpoint":"/t/other","payload":"x","id":0}"#)
        for i in 1...4 { h.send(1, #"{"type":"publish","endpoint":"/t/mine","payload":"m\#(i)","id":\#(i)}"#) }
        let answers = h.replies(1).dropFirst().map { ($0["type"] as! String) + " " + (($0["code"] as? String) ?? "\($0["offset"]!)") }
        #expect(answers == ["error forbidden", "published 0", "published 1", "published 2", "error rate_limited"])
        #expect(h.control.publishes.rateLimited == 1 && h.control.publishes.refusedForbidden == 1)
        #expect(h.control.publishes.producedCount == 3 && h.control.publishes.failedCount == 0)
        let produced = h.source.published.withLock { $0 }
        #expect(produced.map { String(decoding: $0.value, as: UTF8.self) } == ["m1", "m2", "m3"])
        #expect(produced.first?.headers.map(\.name) == ["streamgate-subject", "streamgate-client"])
    }

    @Test func theTokenBucketRefillsAtItsRateUpToItsBurst() {
        var bucket = TokenBucket(rate: 2, burst: 3, now: 100)
        let first = (0..<4).map { _ in bucket.take(now: 100) }
        #expect(first == [true, true, true, false])
        let refilled = bucket.take(now: 100.5)  // one token back after half a second
        #expect(refilled)
        let empty = bucket.take(now: 100.5)
        #expect(!empty)
        let later = (0..<4).map { _ in bucket.take(now: 1_000) }
        #expect(later == [true, true, true, false], "never more than the burst")
    }

    @Test func requestsSentBeforeAuthenticationEndedAreHandledInOrderAfterWelcome() async throws {
        let h = ControlPlaneHarness(tokens: ["a": try Self.identity("a", subscribe: ["/**"])])
        h.authorizer.open.store(false, ordering: .releasing)
        h.open(1, token: "a")
        h.send(1, #"{"type":"subscribe","endpoint":"/t/1"}"#)
        h.send(1, #"{"type":"unsubscribe","endpoint":"/t/1"}"#)
        h.send(1, #"{"type":"subscribe","endpoint":"/t/2"}"#)
        #expect(h.fanout.events(1).isEmpty)
        h.authorizer.open.store(true, ordering: .releasing)
        try await h.waitUntil("the waiting requests") { h.replies(1).count == 4 }
        #expect(h.replies(1).map { $0["type"] as! String } == ["welcome", "subscribed", "unsubscribed", "subscribed"])
        #expect(h.fanout.isSubscribed(1, to: "/t/2") && !h.fanout.isSubscribed(1, to: "/t/1"))

        // More than the bound before authentication ends closes the connection.
        h.authorizer.open.store(false, ordering: .releasing)
        h.open(2, token: "a")
        for _ in 0...ClientConnections.maxWaitingRequests { h.send(2, #"{"type":"subscribe","endpoint":"/t/1"}"#) }
        #expect(h.replies(2).first?["code"] as? String == "too_many_requests")
        #expect(h.fanout.events(2).last == .closed(code: UInt16(CF_CLOSE_POLICY_VIOLATION), reason: "too many requests"))
        h.authorizer.open.store(true, ordering: .releasing)
    }

    @Test func aPingIsAnsweredAtOnce() async throws {
        let h = ControlPlaneHarness()
        try await h.connect(1)
        h.send(1, #"{"type":"ping","id":3}"#)
        #expect(h.fanout.events(1).last == .text(#"{"type":"pong","id":3}"#))
    }

    @Test func anUnknownTokenIsRefusedAndClosed() async throws {
        let h = ControlPlaneHarness()
        h.open(1, token: "forged")
        try await h.waitUntil("the refusal") { h.fanout.events(1).count == 2 }
        #expect(h.replies(1).first?["code"] as? String == "unauthorized")
        #expect(h.fanout.events(1).last == .closed(code: UInt16(CF_CLOSE_POLICY_VIOLATION), reason: "unauthorized"))
    }
}
