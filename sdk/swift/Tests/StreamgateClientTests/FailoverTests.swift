import Foundation
import StreamgateClient
import Testing

/// The Swift SDK against a real two-node cluster and broker (`Tests/Cluster`),
/// the same scenario as the JavaScript and Python SDKs' failover tests: a
/// client subscribed to several endpoints while a producer writes steadily over
/// several keys and partitions; the node it is on is killed (-9), later started
/// again, and then the other node is killed; meanwhile the client's first token
/// expires and the SDK refreshes it in-band through its provider. Per endpoint,
/// what the application received must be what the producer produced, record by
/// record against its delivery reports: no loss, no duplicate, no reorder.
@Suite("Swift SDK against a cluster", .serialized, .timeLimit(.minutes(3)))
struct ClusterTests {
    static let keys = ["a", "b", "c", "d", "e", "f"]

    /// A tokens file (static-tokens authorizer): a token about to expire, and its successor.
    static func tokensFile() throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("streamgate-swift-sdk-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let entry = { (token: String, expiresAt: Int) -> [String: Any] in
            ["token": token, "subject": "sdk-test", "subscribe": ["/**"], "publish": ["/**"], "expires_at": expiresAt]
        }
        let file = directory.appendingPathComponent("tokens.json")
        try JSONSerialization.data(withJSONObject: ["tokens": [entry("first-token-of-the-sdk-test", now + 4),
                                                                entry("second-token-of-the-sdk-test", now + 3_600)]])
            .write(to: file)
        return file.path
    }

    @Test("every message exactly once, in order, across two node kills and a token refresh")
    func failover() async throws {
        let cluster = try await Cluster.start(nodes: 2, partitions: 4, overrides: [
            "authorization": ["plugin": "static-tokens", "options": ["file": try Self.tokensFile()]],
            "sessions": ["token_expiry_warning_seconds": 3],
        ])
        defer { cluster.stop() }
        let tokens = Collected<String>()
        var configuration = StreamgateClient.Configuration(urls: cluster.nodes.map(\.url), token: .provider {
            // The first connect gets the short-lived token; every later call the successor.
            tokens.append(tokens.count == 0 ? "first-token-of-the-sdk-test" : "second-token-of-the-sdk-test")
            return tokens.all.last!
        })
        configuration.minReconnectDelay = .milliseconds(50)
        configuration.maxReconnectDelay = .seconds(1)
        configuration.livenessTimeout = .seconds(5)
        let client = try StreamgateClient(configuration: configuration)
        let received = Dictionary(uniqueKeysWithValues: Self.keys.map { ($0, Collected<(seq: Int64, text: String)>()) })
        let notices = Collected<String>()
        let refreshed = Collected<Void>()
        let connections = Collected<String>()
        let retries = Collected<String>()

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            group.addTask {
                for await event in client.events {
                    switch event {
                    case .tokenRefreshed: refreshed.append(())
                    case .connected(let url, _, _): connections.append(url)
                    case .error(let error): notices.append("error \(error)")
                    default: break
                    }
                }
            }
            try await client.connected()
            for key in Self.keys {
                let subscription = client.subscribe("/\(cluster.topic)/\(key)")
                group.addTask {
                    for try await message in subscription { received[key]!.append((message.seq, message.text ?? "")) }
                }
                group.addTask {
                    for await event in subscription.events {
                        switch event {
                        case .subscribed, .replayed: continue  // every (re)subscribe and resume
                        // A cold node reads the missed messages from Kafka, at most two
                        // resumes per connection at a time: the others are refused for
                        // now (`replay_failed`) and the SDK resumes them again shortly.
                        case .retry(let error) where error.code == .replayFailed: retries.append(key)
                        default: notices.append("\(key): \(event)")
                        }
                    }
                }
            }
            try await until("every subscription") { Self.keys.allSatisfy { client.subscribe("/\(cluster.topic)/\($0)").canonicalEndpoint != nil } }
            try await cluster.command(["cmd": "produce_start", "keys": Self.keys, "interval_ms": 20])
            let total = { received.values.reduce(0) { $0 + $1.count } }
            try await until("live messages") { total() >= 60 }
            // The first token expires within 4 s; the gateway warns 3 s before, and the
            // SDK authenticates in-band with the provider's next token.
            try await until("the in-band token refresh", timeout: .seconds(10)) { refreshed.count == 1 }
            #expect(tokens.all == ["first-token-of-the-sdk-test", "second-token-of-the-sdk-test"])

            var recoveries: [String] = []
            for round in 0..<2 {
                let victimURL = client.node
                let victim = try #require(cluster.nodes.firstIndex { $0.url == victimURL })
                let before = total()
                let killedAt = ContinuousClock.now
                try await cluster.command(["cmd": "kill", "node": victim])
                try await until("a reconnect to the other node") { client.state == .connected && client.node != victimURL }
                let atReconnect = total()
                try await until("a resumed message") { total() > atReconnect }
                recoveries.append("kill of node \(victim): first message from the other node \(ContinuousClock.now - killedAt) after the kill")
                try await until("more live messages") { total() > before + 20 * Self.keys.count }
                if round == 0 { try await cluster.command(["cmd": "start", "node": victim]) }
            }
            let reports = try await cluster.stopProducer()
            for key in Self.keys {
                try await until("every message of \(key)") { received[key]!.count >= reports[key]!.count }
            }
            try await Task.sleep(for: .milliseconds(200))  // room for a duplicate to show
            for key in Self.keys {
                let got = received[key]!.all.map { "\($0.seq):\($0.text)" }
                let expected = reports[key]!.map { "\($0.offset):\($0.value)" }
                #expect(got == expected, "endpoint /\(cluster.topic)/\(key)")
            }
            let count = Self.keys.reduce(0) { $0 + reports[$1]!.count }
            print("failover (Swift SDK): \(count) messages on \(Self.keys.count) endpoints, each exactly once and in order; \(recoveries.joined(separator: "; ")); token refreshed in-band \(refreshed.count) time(s); \(retries.count) resume(s) retried")
            #expect(notices.all.isEmpty, "\(notices.all)")
            #expect(connections.count == 3, "\(connections.all)")
            await client.close()
            try await group.waitForAll()
        }
    }
}
