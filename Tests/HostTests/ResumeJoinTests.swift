import Foundation
import StreamgatePluginAPI
import Testing

@testable import streamgate

/// The exactly-once join of a resume with live traffic, model-based: a
/// partition is produced to in random batches while a client resumes from a
/// random position — inside the cache, older than it (read again from the
/// source on the replayer's threads), or ahead of this node (it waits for
/// the node to catch up) — at a random moment. Whatever the interleaving,
/// the client must receive exactly the messages of its endpoint after its
/// position, once each, in order: the replayed ones, the `replayed` marker
/// counting them, the subscription, then live ones.
@Suite("Resume join: exactly once, in order, then live")
struct ResumeJoinTests {
    /// One randomized run; returns where the replay came from.
    static func run(seed: UInt64) async throws -> String? {
        var random = RecoveryTestRandom(seed: seed)
        var settings = ControlPlane.Settings()
        settings.recovery.defaults.maxMessages = Int.random(in: 1...12, using: &random)
        settings.recovery.replayRecordsPerSecond = 10_000_000
        settings.recovery.replayTimeoutMs = 5_000
        settings.recovery.resumeWaitMs = 5_000
        let h = ControlPlaneHarness(settings: settings)
        let replayer = try #require(h.control.replayer)
        let replaying = Task { try await replayer.run() }
        defer { replaying.cancel() }

        func batches(_ records: Int) -> [[String]] {
            var out: [[String]] = []
            var left = records
            while left > 0 {
                let n = min(left, Int.random(in: 1...6, using: &random))
                out.append((0..<n).map { _ in Bool.random(using: &random) ? "k" : "other" })
                left -= n
            }
            return out
        }
        // What the node consumed before the client came back (the first record is /t/k's).
        h.produce(["k"])
        for batch in batches(Int.random(in: 0...40, using: &random)) { h.produce(batch) }
        let consumed = Int64(h.source.records.count)
        let kOffsets = h.source.records.filter { $0.key == "k" }.map(\.offset)
        // The client's position: what it saw of /t/k last (-1: nothing yet),
        // or a position this node has not reached (it saw it on a node ahead).
        let liveRecords = Int.random(in: 0...30, using: &random)
        let position: Int64 = Int.random(in: 0..<5, using: &random) == 0 && liveRecords > 0
            ? consumed - 1 + Int64.random(in: 1...Int64(liveRecords), using: &random)
            : ([-1] + kOffsets).randomElement(using: &random)!
        let live = batches(liveRecords)
        let pauses = live.map { _ in Int.random(in: 0...3, using: &random) == 0 ? Int.random(in: 1...400, using: &random) : 0 }
        let delay = Int.random(in: 0...1_500, using: &random)

        try await h.connect(1)
        let producer = Task {
            for (batch, pause) in zip(live, pauses) {
                h.produce(batch)
                if pause > 0 { try await Task.sleep(for: .microseconds(pause)) }
            }
        }
        try await Task.sleep(for: .microseconds(delay))
        h.send(1, #"{"type":"subscribe","endpoint":"/t/k","from":{"epoch":"E","seq":\#(position)}}"#)
        try await producer.value

        let expected = h.source.records.filter { $0.key == "k" && $0.offset > position }.map(\.offset)
        try await h.waitUntil("the replay and live messages (seed \(seed))") {
            h.fanout.deliveries(1).count >= expected.count && !h.replies(1, type: "replayed").isEmpty
        }
        try await Task.sleep(for: .milliseconds(2))  // room for a duplicate to show
        let context = "seed \(seed), position \(position), consumed \(consumed), cache \(settings.recovery.defaults.maxMessages)"
        #expect(h.fanout.deliveries(1).map(\.seq) == expected, "\(context)")

        // The stream's shape: ack, replayed messages, marker, subscription, live.
        let events = Array(h.fanout.events(1).dropFirst())  // welcome
        #expect(events.first == .text(#"{"type":"subscribed","endpoint":"/t/k"}"#), "\(context)")
        let marker = try #require(events.firstIndex { if case .text(let t) = $0 { t.contains("\"replayed\"") } else { false } })
        let replayed = try #require(h.replies(1, type: "replayed").first)
        let before = events[..<marker].filter { if case .delivery = $0 { true } else { false } }.count
        #expect(replayed["count"] as? Int == before, "\(context)")
        #expect(events.indices.contains(marker + 1) && events[marker + 1] == .subscribed("/t/k"), "\(context)")
        #expect(h.replies(1, type: "error").isEmpty && h.replies(1, type: "notice").isEmpty, "\(context)")

        replaying.cancel()
        try await replaying.value
        return replayed["source"] as? String
    }

    @Test func aResumeMeetsLiveTrafficWithNoGapAndNoDuplicate() async throws {
        var sources: [String: Int] = [:]
        for seed in UInt64(1)...60 {
            let source = try await Self.run(seed: seed) ?? "none"
            sources[source, default: 0] += 1
        }
        // Both ways a resume is served were exercised.
        #expect(sources["cache", default: 0] >= 10, "\(sources)")
        #expect(sources["kafka", default: 0] >= 10, "\(sources)")
    }
}
