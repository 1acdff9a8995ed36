import Foundation
import StreamgatePluginAPI
import StreamgatePlugins
import Synchronization
import Testing

@testable import streamgate

/// The replay queue under a source slower than the resumes asked of it: a
/// read nobody waits for is not made, a read that waited longer than a read
/// may take is answered with replay_failed, and a read whose subscription
/// goes stops (the soak found resumes piling up behind reads for clients
/// that had long given up).
@Suite("SourceReplayer: the queue of reads", .serialized)
struct SourceReplayerTests {
    /// A source whose reads take `readMs` and deliver `records` records of
    /// key "k", then report the end of the log.
    final class SlowSource: ReplayableSource, @unchecked Sendable {
        let readMs: Int
        let records: Int
        let reads = Mutex<[Int64]>([])
        let stoppedEarly = Atomic<Int>(0)

        init(readMs: Int, records: Int = 0) {
            self.readMs = readMs
            self.records = records
        }

        var topics: [String] { ["t"] }
        func run(delivering sink: any MessageSink) async throws {}

        func replay(_ request: ReplayRequest, timeoutMs: Int, reader: any ReplayReader) throws(ReplayError)
            -> ReplayOutcome
        {
            reads.withLock { $0.append(request.fromOffset) }
            usleep(UInt32(readMs * 1000))
            reader.logStarts(at: 0)
            let key = Array("k".utf8)
            let value = Array("v".utf8)
            for offset in 0..<Int64(records) {
                let more = key.withUnsafeBytes { k in
                    value.withUnsafeBytes { v in
                        reader.read(SourceRecord(topic: "t", partition: 0, offset: offset, timestampMs: 0,
                                                 epoch: "e", key: k, value: v))
                    }
                }
                if !more {
                    stoppedEarly.add(1, ordering: .relaxed)
                    return .stopped
                }
            }
            _ = reader.caughtUp(nextOffset: Int64(records))
            return .stopped
        }
    }

    /// What happened to one job.
    final class Outcome: @unchecked Sendable {
        let failures = Mutex<[String]>([])
        let attempts = Atomic<Int>(0)
        let done = Atomic<Int>(0)
    }

    static func job(from offset: Int64, outcome: Outcome, wanted: @escaping @Sendable () -> Bool = { true })
        -> SourceReplayer.Job
    {
        SourceReplayer.Job(
            request: ReplayRequest(topic: "t", partition: 0, epoch: "e", fromOffset: offset),
            endpoint: "/t/k", coveredFrom: .max,
            attempt: { _, _, _ in
                outcome.attempts.add(1, ordering: .relaxed)
                return .readOn(until: .max)
            },
            stale: { _ in },
            failed: { code, reason in outcome.failures.withLock { $0.append("\(code.rawValue): \(reason)") } },
            done: { outcome.done.add(1, ordering: .relaxed) },
            isWanted: wanted)
    }

    static func replayer(_ source: SlowSource, timeoutMs: Int) -> SourceReplayer {
        var configuration = RecoveryConfiguration()
        configuration.replayConcurrency = 1
        configuration.replayTimeoutMs = timeoutMs
        return SourceReplayer(source: source, mapper: TopicKeyMapper(), configuration: configuration,
                              logger: .init(label: "test"))
    }

    /// Runs `body` while the replayer runs as a service (its reader threads
    /// exist only then), then stops it the way a graceful shutdown would.
    static func whileRunning(_ replayer: SourceReplayer, _ body: () async throws -> Void) async throws {
        let service = Task { try await replayer.run() }
        defer { service.cancel() }
        try await body()
        service.cancel()
        try await service.value
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
        #expect(condition())
    }

    @Test func aReadNobodyWaitsForIsNotMade() async throws {
        let source = SlowSource(readMs: 0)
        let replayer = Self.replayer(source, timeoutMs: 1_000)
        let outcome = Outcome()
        try await Self.whileRunning(replayer) {
            #expect(replayer.fetch(Self.job(from: 7, outcome: outcome, wanted: { false })))
            try await Self.waitUntil { outcome.done.load(ordering: .relaxed) == 1 }
        }
        #expect(source.reads.withLock { $0 }.isEmpty)
        #expect(outcome.failures.withLock { $0 }.isEmpty)
    }

    @Test func aReadThatWaitedLongerThanAReadMayTakeIsRefused() async throws {
        // One reader, busy 400 ms with the first job; the second waits longer
        // than the 200 ms a read may take.
        let source = SlowSource(readMs: 400)
        let replayer = Self.replayer(source, timeoutMs: 200)
        let first = Outcome(), second = Outcome()
        try await Self.whileRunning(replayer) {
            #expect(replayer.fetch(Self.job(from: 1, outcome: first)))
            #expect(replayer.fetch(Self.job(from: 2, outcome: second)))
            try await Self.waitUntil { second.done.load(ordering: .relaxed) == 1 }
        }
        #expect(source.reads.withLock { $0 } == [1])
        let failures = second.failures.withLock { $0 }
        #expect(failures.count == 1)
        #expect(failures.first?.hasPrefix("replay_failed: this node's reads from the source are busy") == true)
    }

    @Test func readsQueuedAtShutdownFailAndTheReadersEnd() async throws {
        // Reads queued before the service runs wait for it; at shutdown the
        // ones still queued are answered (replay_failed) and `run` returns.
        let source = SlowSource(readMs: 300)
        let replayer = Self.replayer(source, timeoutMs: 10_000)
        let first = Outcome(), second = Outcome()
        #expect(replayer.fetch(Self.job(from: 1, outcome: first)))
        #expect(replayer.fetch(Self.job(from: 2, outcome: second)))
        try await Self.whileRunning(replayer) {
            try await Self.waitUntil { source.reads.withLock { $0 } == [1] }
        }
        #expect(first.done.load(ordering: .relaxed) == 1)
        #expect(second.done.load(ordering: .relaxed) == 1)
        #expect(second.failures.withLock { $0 } == ["replay_failed: the gateway is shutting down"])
        #expect(!replayer.fetch(Self.job(from: 3, outcome: Outcome())), "a stopped replayer takes no reads")
    }

    @Test func aReadStopsWhenItsSubscriptionGoes() async throws {
        let source = SlowSource(readMs: 0, records: 100_000)
        let replayer = Self.replayer(source, timeoutMs: 10_000)
        let wanted = Atomic<Bool>(true)
        let outcome = Outcome()
        // The client goes away while its read is under way.
        let job = Self.job(from: 0, outcome: outcome, wanted: {
            let answer = wanted.load(ordering: .relaxed)
            wanted.store(false, ordering: .relaxed)
            return answer
        })
        try await Self.whileRunning(replayer) {
            #expect(replayer.fetch(job))
            try await Self.waitUntil { outcome.done.load(ordering: .relaxed) == 1 }
        }
        #expect(source.stoppedEarly.load(ordering: .relaxed) == 1, "the read went on for nobody")
    }
}
