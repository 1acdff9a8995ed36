import Foundation
import StreamgateClient
import Testing

/// The rest of the SDK's contract against a real cluster: publish and its typed
/// refusals, a refused subscribe, snapshot, unsubscribe and close; the default
/// reaction to a resume too large to replay; and failover when a node stops
/// answering without closing anything (the liveness check).
extension ClusterTests {
    /// A tokens file whose one token may subscribe to `/*/open` and `/*/news` and publish to `/*/open`.
    static func narrowTokensFile() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("streamgate-swift-sdk-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("tokens.json")
        let token: [String: Any] = ["token": "narrow-token-of-the-sdk-test", "subject": "narrow",
                                    "subscribe": ["/*/open", "/*/news"], "publish": ["/*/open"]]
        try JSONSerialization.data(withJSONObject: ["tokens": [token]]).write(to: file)
        return file.path
    }

    @Test("publish returns Kafka's partition and offset and carries trace context; refusals are typed errors; snapshot, unsubscribe and close")
    func publishAndRefusals() async throws {
        let cluster = try await Cluster.start(nodes: 1, partitions: 2, overrides: [
            "authorization": ["plugin": "static-tokens", "options": ["file": try Self.narrowTokensFile()]],
            "tracing": ["propagate": true],
        ])
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        defer { cluster.stop() }
        let client = try StreamgateClient(configuration: .init(urls: cluster.nodes.map(\.url),
                                                               token: .fixed("narrow-token-of-the-sdk-test")))
        let open = "/\(cluster.topic)/open"
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            // Publish waits for the connection by itself.
            let watcher = client.subscribe(open)
            var watched = watcher.makeAsyncIterator()
            try await until("subscribed") { watcher.canonicalEndpoint != nil }
            let first = try await client.publish(open, text: "one", traceParent: trace)
            let second = try await client.publish(open, bytes: [0, 255, 7])
            #expect(second.partition == first.partition && second.offset > first.offset)
            #expect(first.endpoint == open)
            let one = try #require(try await watched.next())
            let two = try #require(try await watched.next())
            #expect(one.text == "one" && one.seq == first.offset && !one.isSnapshot && one.traceParent == trace)
            #expect(two.traceParent == nil)
            #expect(two.payload == [0, 255, 7] && two.seq == second.offset && watcher.position == two.position)
            // Unsubscribe ends the iteration normally.
            await watcher.unsubscribe()
            #expect(try await watched.next() == nil)

            let refused = await #expect(throws: StreamgateError.self) { try await client.publish("/\(cluster.topic)/news", text: "x") }
            #expect(refused?.code == .forbidden)

            // A subscription the token does not allow ends, and its iteration throws the refusal.
            let secret = client.subscribe("/\(cluster.topic)/secret")
            let ended = await #expect(throws: StreamgateError.self) { for try await _ in secret {} }
            #expect(ended?.code == .forbidden && secret.isEnded)

            // Snapshot: the latest cached message first, flagged, then live.
            let snapshot = client.subscribe(open, snapshot: true)
            var messages = snapshot.makeAsyncIterator()
            let latest = try #require(try await messages.next())
            #expect(latest.isSnapshot && latest.payload == [0, 255, 7] && latest.seq == second.offset, "\(latest)")
            let third = try await client.publish(open, text: "three")
            let live = try #require(try await messages.next())
            #expect(!live.isSnapshot && live.text == "three" && live.seq == third.offset)
            #expect(snapshot.position == live.position)

            // Close: run() returns, what waits throws `closed`.
            let news = client.subscribe("/\(cluster.topic)/news")
            await client.close()
            try await group.next()
            #expect(news.isEnded && client.state == .closed)
            let closed = await #expect(throws: StreamgateError.self) { try await client.connected() }
            #expect(closed?.code == .closed)
        }
    }

    @Test("a resume too large to replay is a gap event, then live, in order")
    func replayTooLarge() async throws {
        let cluster = try await Cluster.start(nodes: 2, partitions: 1, overrides: ["recovery": ["replay": ["max_messages": 5]]])
        defer { cluster.stop() }
        // Reconnects wait 1.5 s: long enough for 20 messages/s to pile up more than 5 missed ones.
        var configuration = StreamgateClient.Configuration(urls: cluster.nodes.map(\.url))
        configuration.minReconnectDelay = .milliseconds(1_500)
        configuration.maxReconnectDelay = .milliseconds(1_500)
        configuration.jitter = false
        let client = try StreamgateClient(configuration: configuration)
        let seqs = Collected<Int64>()
        let events = Collected<SubscriptionEvent>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            try await client.connected()
            let subscription = client.subscribe("/\(cluster.topic)/k")
            group.addTask { for try await message in subscription { seqs.append(message.seq) } }
            group.addTask { for await event in subscription.events { events.append(event) } }
            try await until("subscribed") { subscription.canonicalEndpoint != nil }
            try await cluster.command(["cmd": "produce_start", "keys": ["k"], "interval_ms": 50])
            try await until("live messages") { seqs.count >= 5 }
            let victim = try #require(cluster.nodes.firstIndex { $0.url == client.node })
            try await cluster.command(["cmd": "kill", "node": victim])
            let isGap = { (event: SubscriptionEvent) -> Bool in if case .gap = event { true } else { false } }
            try await until("the gap event") { events.all.contains(where: isGap) }
            let atGap = seqs.count
            try await until("live messages after the gap") { seqs.count >= atGap + 5 }
            let reports = try await cluster.stopProducer()
            await client.close()
            try await group.waitForAll()

            #expect(events.all.filter(isGap).count == 1)
            #expect(!events.all.contains { if case .ended(.some) = $0 { true } else { false } })
            let got = seqs.all
            #expect(zip(got, got.dropFirst()).allSatisfy { $0 < $1 }, "in order, no duplicate: \(got)")
            let produced = reports["k"]!.map(\.offset)
            let missing = produced.filter { $0 <= got.last! && !got.contains($0) }
            #expect(missing.count > 5, "more than the replay limit was missed (\(missing.count))")
            #expect(missing == produced.filter { $0 >= missing.first! && $0 <= missing.last! }, "the skipped messages are one run")
        }
    }

    @Test("a node that stops answering (SIGSTOP) is left after the liveness timeout, and nothing is lost")
    func silentNode() async throws {
        let cluster = try await Cluster.start(nodes: 2, partitions: 2)
        defer { cluster.stop() }
        var configuration = StreamgateClient.Configuration(urls: cluster.nodes.map(\.url))
        configuration.livenessTimeout = .seconds(2)
        configuration.minReconnectDelay = .milliseconds(50)
        let client = try StreamgateClient(configuration: configuration)
        let received = Collected<String>()
        let disconnects = Collected<String>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            group.addTask {
                for await event in client.events { if case .disconnected(_, _, let reason) = event { disconnects.append(reason) } }
            }
            try await client.connected()
            let subscription = client.subscribe("/\(cluster.topic)/k")
            group.addTask { for try await message in subscription { received.append("\(message.seq):\(message.text ?? "")") } }
            try await until("subscribed") { subscription.canonicalEndpoint != nil }
            try await cluster.command(["cmd": "produce_start", "keys": ["k"], "interval_ms": 20])
            try await until("live messages") { received.count >= 20 }
            let victimURL = client.node
            let victim = try #require(cluster.nodes.firstIndex { $0.url == victimURL })
            let pausedAt = ContinuousClock.now
            try await cluster.command(["cmd": "pause", "node": victim])
            try await until("a reconnect to the other node") { client.state == .connected && client.node != victimURL }
            let detected = ContinuousClock.now - pausedAt
            let atReconnect = received.count
            try await until("resumed messages") { received.count > atReconnect + 20 }
            let reports = try await cluster.stopProducer()
            try await until("every message") { received.count >= reports["k"]!.count }
            try await cluster.command(["cmd": "resume", "node": victim])
            await client.close()
            try await group.waitForAll()
            print("silent node (Swift SDK): left \(detected) after SIGSTOP (liveness timeout 2 s); \(received.count) messages exactly once")
            #expect(received.all == reports["k"]!.map { "\($0.offset):\($0.value)" })
            #expect(detected >= .seconds(2) && detected < .seconds(6), "\(detected)")
            #expect(disconnects.all.count == 1, "\(disconnects.all)")
        }
    }
}

extension ClusterTests {
    @Test("a failover before the first message resumes from the gateway's live position, and misses nothing")
    func failoverBeforeTheFirstMessage() async throws {
        let cluster = try await Cluster.start(nodes: 2, partitions: 1)
        defer { cluster.stop() }
        // Something of the endpoint is cached on both nodes, so they know its partition.
        let before = try await cluster.command(["cmd": "produce", "key": "quiet", "value": "before"])
        try await Task.sleep(for: .seconds(1))  // both nodes consume it within milliseconds
        // Reconnects wait 1.5 s, so the record produced after the kill is consumed by the
        // other node before the client gets there: a live subscribe would miss it.
        var configuration = StreamgateClient.Configuration(urls: cluster.nodes.map(\.url))
        configuration.minReconnectDelay = .milliseconds(1_500)
        configuration.maxReconnectDelay = .milliseconds(1_500)
        configuration.jitter = false
        let client = try StreamgateClient(configuration: configuration)
        let received = Collected<String>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            try await client.connected()
            let subscription = client.subscribe("/\(cluster.topic)/quiet")
            group.addTask { for try await message in subscription { received.append("\(message.seq):\(message.text ?? "")") } }
            // The `live` position comes right after `subscribed`.
            try await until("the live position") { subscription.position != nil }
            let live = try #require(subscription.position)
            #expect(live.seq == (before["offset"] as? Int).map(Int64.init))
            let victim = try #require(cluster.nodes.firstIndex { $0.url == client.node })
            try await cluster.command(["cmd": "kill", "node": victim])
            let during = try await cluster.command(["cmd": "produce", "key": "quiet", "value": "during the failover"])
            try await until("the message produced during the failover") { received.count == 1 }
            let after = try await cluster.command(["cmd": "produce", "key": "quiet", "value": "after"])
            try await until("the next live message") { received.count == 2 }
            await client.close()
            try await group.waitForAll()
            #expect(received.all == ["\(during["offset"]!):during the failover", "\(after["offset"]!):after"])
        }
    }
}
