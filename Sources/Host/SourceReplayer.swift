import CFanout
import Foundation
import Logging
import StreamgatePluginAPI
import Synchronization

/// Reads past ranges of a partition from the source for resuming clients
/// (tiered replay), on a few threads of its own: at most
/// `recovery.replay.max_concurrent` replays run at once and each delivers at
/// most `recovery.replay.max_messages`, so one client cannot starve the
/// others or make the node buffer a whole log. Waiting jobs are bounded too.
final class SourceReplayer: Sendable {
    /// What one read produced: the endpoint's records, framed.
    struct Fetched: Sendable {
        /// References handed over to the receiver (addresses of `cf_frame`s).
        let frames: [UInt]
        let bytes: Int
        let outcome: ReplayOutcome
        /// More than `max_messages` matched: the read stopped early.
        let truncated: Bool
    }

    typealias Completion = @Sendable (Result<Fetched, ReplayError>) -> Void

    private struct Job: Sendable {
        let request: ReplayRequest
        let endpoint: String
        let completion: Completion
    }

    static let maxWaitingJobs = 1_000

    private let source: any ReplayableSource
    private let mapper: any EndpointMapper
    private let configuration: RecoveryConfiguration
    private let logger: Logger
    private let jobs = Mutex<[Job]>([])
    private let available = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)

    init(source: any ReplayableSource, mapper: any EndpointMapper, configuration: RecoveryConfiguration, logger: Logger) {
        self.source = source
        self.mapper = mapper
        self.configuration = configuration
        self.logger = logger
        for i in 0..<configuration.replayConcurrency {
            let thread = Thread { [self] in work() }
            thread.name = "replay-\(i)"
            thread.start()
        }
    }

    /// Queues a read of `request`, keeping the records of `endpoint`; false
    /// when too many reads are waiting already.
    func fetch(_ request: ReplayRequest, endpoint: String, completion: @escaping Completion) -> Bool {
        let accepted = jobs.withLock { queue -> Bool in
            guard queue.count < Self.maxWaitingJobs, !stopped.load(ordering: .relaxed) else { return false }
            queue.append(Job(request: request, endpoint: endpoint, completion: completion))
            return true
        }
        if accepted { available.signal() }
        return accepted
    }

    /// Lets the worker threads finish; queued jobs fail.
    func stop() {
        stopped.store(true, ordering: .relaxed)
        for _ in 0..<configuration.replayConcurrency { available.signal() }
    }

    private func work() {
        while true {
            available.wait()
            if stopped.load(ordering: .relaxed) {
                let left = jobs.withLock { q -> [Job] in defer { q.removeAll() }; return q }
                for job in left { job.completion(.failure(ReplayError("the gateway is shutting down"))) }
                return
            }
            guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            job.completion(run(job))
        }
    }

    private func run(_ job: Job) -> Result<Fetched, ReplayError> {
        var frames: [UInt] = []
        var bytes = 0
        var truncated = false
        let limit = configuration.maxReplayMessages
        let started = DispatchTime.now().uptimeNanoseconds
        var pace = ReplayPace(recordsPerSecond: configuration.replayRecordsPerSecond, startNs: started)
        do {
            let outcome = try source.replay(job.request, timeoutMs: configuration.replayTimeoutMs) { record in
                pace.recordRead()
                guard let key = record.key, mapper.endpoint(topic: record.topic, key: key) == job.endpoint else {
                    return true
                }
                guard frames.count < limit else {
                    truncated = true
                    return false
                }
                guard let frame = DeliveryFrame.make(
                    endpoint: job.endpoint, epoch: record.epoch, seq: record.offset, timestampMs: record.timestampMs,
                    payload: record.value)
                else { return false }
                var length = 0
                _ = cf_frame_bytes(frame, &length)
                frames.append(UInt(bitPattern: frame))
                bytes += length + EndpointCache.entryOverhead
                return true
            }
            logger.debug("replayed \(frames.count) records of \(job.endpoint) from \(job.request.topic)[\(job.request.partition)] \(job.request.fromOffset)..<\(job.request.untilOffset) in \((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) ms")
            return .success(Fetched(frames: frames, bytes: bytes, outcome: outcome, truncated: truncated))
        } catch {
            for address in frames { cf_frame_release(OpaquePointer(bitPattern: address)) }
            return .failure(error)
        }
    }
}

/// Keeps one replay at or under its records-per-second budget by sleeping
/// when it gets ahead (checked every 16 records, so the clock costs little).
struct ReplayPace {
    let recordsPerSecond: Int
    let startNs: UInt64
    private(set) var read = 0

    init(recordsPerSecond: Int, startNs: UInt64) {
        self.recordsPerSecond = recordsPerSecond
        self.startNs = startNs
    }

    mutating func recordRead() {
        read += 1
        guard read % 16 == 0, let wait = delayNs(nowNs: DispatchTime.now().uptimeNanoseconds) else { return }
        usleep(UInt32(min(wait / 1_000, 1_000_000)))
    }

    /// How long to wait before reading on, or nil when within budget.
    func delayNs(nowNs: UInt64) -> UInt64? {
        let dueNs = startNs + UInt64(Double(read) / Double(recordsPerSecond) * 1e9)
        return dueNs > nowNs ? dueNs - nowNs : nil
    }
}
