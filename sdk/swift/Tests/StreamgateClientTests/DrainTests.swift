import Foundation
import StreamgateClient
import Testing

/// A rolling restart as the Swift SDK sees it: the node its clients are on is
/// stopped with SIGTERM and drains (`moving`, docs/protocol.md). Every client
/// must leave within the window, finish its publishes there, resume on the
/// other node, and receive what the producer produced exactly once, in order;
/// the node must exit as soon as they left, not at the end of its grace period.
extension ClusterTests {
    @Test("a draining node: every client moves within the window, no message lost or repeated, no publish lost")
    func drain() async throws {
        let gracePeriodMs = 20_000
        let cluster = try await Cluster.start(nodes: 2, partitions: 4, overrides: [
            "drain": ["grace_period_ms": gracePeriodMs, "reconnect_within_ms": 1_500],
        ])
        defer { cluster.stop() }
        let keys = ["a", "b", "c"]
        let clientCount = 6
        // Node 0 first: every client lands there.
        var configuration = StreamgateClient.Configuration(urls: cluster.nodes.map(\.url))
        configuration.minReconnectDelay = .milliseconds(50)
        configuration.maxReconnectDelay = .seconds(1)
        let clients = try (0..<clientCount).map { _ in try StreamgateClient(configuration: configuration) }
        let received = (0..<clientCount).map { _ in
            Dictionary(uniqueKeysWithValues: keys.map { ($0, Collected<(seq: Int64, text: String)>()) })
        }
        let moves = Collected<(client: Int, url: String, window: Duration)>()
        let notices = Collected<String>()
        let published = Collected<Int64>()
        let publishErrors = Collected<String>()

        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, client) in clients.enumerated() {
                group.addTask { try await client.run() }
                group.addTask {
                    for await event in client.events {
                        switch event {
                        case .moving(let url, let window): moves.append((index, url, window))
                        case .error(let error): notices.append("client \(index): \(error)")
                        default: break
                        }
                    }
                }
                try await client.connected()
                #expect(client.node == cluster.nodes[0].url)
                for key in keys {
                    let subscription = client.subscribe("/\(cluster.topic)/\(key)")
                    group.addTask {
                        for try await message in subscription { received[index][key]!.append((message.seq, message.text ?? "")) }
                    }
                }
            }
            try await until("every subscription") {
                clients.allSatisfy { client in keys.allSatisfy { client.subscribe("/\(cluster.topic)/\($0)").canonicalEndpoint != nil } }
            }
            try await cluster.command(["cmd": "produce_start", "keys": keys, "interval_ms": 20])
            let total = { received.reduce(0) { sum, perKey in sum + perKey.values.reduce(0) { $0 + $1.count } } }
            try await until("live messages") { total() >= clientCount * keys.count * 5 }

            // One client publishes without pause through the move: every publish
            // must learn where its record landed (none lost to the move).
            let publishing = Task {
                var n = 0
                while !Task.isCancelled {
                    do {
                        published.append(try await clients[0].publish("/\(cluster.topic)/p", text: "p\(n)").offset)
                    } catch {
                        if !Task.isCancelled { publishErrors.append("\(error)") }
                    }
                    n += 1
                }
            }
            let drained = try await cluster.command(["cmd": "drain", "node": 0])
            let exitedAfterMs = (drained["exited_after_ms"] as? NSNumber)?.intValue ?? -1
            #expect((drained["exit_code"] as? NSNumber)?.intValue == 0)
            #expect(exitedAfterMs >= 0 && exitedAfterMs < gracePeriodMs / 2,
                    "the node exited \(exitedAfterMs) ms after SIGTERM: its clients did not all leave")
            try await until("every client on node 1") {
                clients.allSatisfy { $0.state == .connected && $0.node == cluster.nodes[1].url }
            }
            let publishedBeforeStop = published.count
            try await until("publishes on node 1") { published.count > publishedBeforeStop + 5 }
            publishing.cancel()
            _ = await publishing.value

            let reports = try await cluster.stopProducer()
            for index in 0..<clientCount {
                for key in keys {
                    try await until("every message of \(key) at client \(index)") {
                        received[index][key]!.count >= reports[key]!.count
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(200))  // room for a duplicate to show
            for index in 0..<clientCount {
                for key in keys {
                    let got = received[index][key]!.all.map { "\($0.seq):\($0.text)" }
                    let expected = reports[key]!.map { "\($0.offset):\($0.value)" }
                    #expect(got == expected, "client \(index), endpoint /\(cluster.topic)/\(key)")
                }
            }
            #expect(Set(moves.all.map(\.client)) == Set(0..<clientCount), "every client was told to move once: \(moves.all)")
            #expect(moves.count == clientCount)
            #expect(moves.all.allSatisfy { $0.url == cluster.nodes[0].url && $0.window == .milliseconds(1_500) })
            #expect(publishErrors.all.isEmpty, "\(publishErrors.all)")
            #expect(notices.all.isEmpty, "\(notices.all)")
            let count = keys.reduce(0) { $0 + reports[$1]!.count }
            print("drain (Swift SDK): \(clientCount) clients moved off the draining node, which exited \(exitedAfterMs) ms after SIGTERM (window 1.5 s, grace \(gracePeriodMs / 1000) s); \(count) messages on \(keys.count) endpoints each received exactly once and in order by every client; \(published.count) publishes through the move, none lost")
            for client in clients { await client.close() }
            try await group.waitForAll()
        }
    }
}
