import CFanout
import Foundation
import Logging
import StreamgatePluginAPI
import Synchronization

/// Reads a partition again from the source for resuming clients (tiered
/// replay), on a few threads of its own: at most
/// `recovery.replay.max_concurrent` reads run at once, each keeps at most
/// `recovery.replay.max_messages` and paces itself, so one client cannot
/// starve the others or make the node buffer a whole log. Waiting reads are
/// bounded too.
final class SourceReplayer: Sendable {
    /// One resume to read for: what to read, and how it ends.
    struct Job: Sendable {
        let request: ReplayRequest
        let endpoint: String
        /// The cache was complete from here when the resume was planned.
        let coveredFrom: Int64
        /// Tries to finish the subscription with what was read so far (see
        /// `CachedFanout.completeFetch`, which takes the frames when it finishes).
        let attempt: @Sendable (_ position: Int64, _ frames: OwnedFrames, _ lost: ClosedRange<Int64>?)
            -> CachedFanout.FetchProgress
        /// The source says the position's epoch is gone.
        let stale: @Sendable (_ current: String?) -> Void
        /// The read ended without finishing the subscription (reason for the client).
        let failed: @Sendable (_ code: ClientProtocol.ErrorCode, _ reason: String) -> Void
        /// Always called last, once.
        let done: @Sendable () -> Void
        /// Whether anybody still waits for this read (the connection is open
        /// and the subscription is still this one). Checked before the read
        /// starts and as it goes: a client that gave up and resumed again
        /// must not leave reads behind that load the source for nobody.
        let isWanted: @Sendable () -> Bool
        /// When it was queued (monotonic ns).
        var queuedNs: UInt64 = DispatchTime.now().uptimeNanoseconds
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

    /// Queues a read; false when too many are waiting already.
    func fetch(_ job: Job) -> Bool {
        let accepted = jobs.withLock { queue -> Bool in
            guard queue.count < Self.maxWaitingJobs, !stopped.load(ordering: .relaxed) else { return false }
            queue.append(job)
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
                for job in left {
                    job.failed(.replayFailed, "the gateway is shutting down")
                    job.done()
                }
                return
            }
            guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            start(job)
            job.done()
        }
    }

    /// Runs a job unless nobody waits for it any more, or it waited in the
    /// queue longer than a read may take: a source slower than the resumes
    /// asked of it must answer them (replay_failed, resume again later), not
    /// let the queue and the clients' wait grow without bound.
    private func start(_ job: Job) {
        guard job.isWanted() else { return }
        let waitedMs = (DispatchTime.now().uptimeNanoseconds - job.queuedNs) / 1_000_000
        guard waitedMs <= UInt64(configuration.replayTimeoutMs) else {
            job.failed(.replayFailed, "this node's reads from the source are busy (waited \(waitedMs) ms, more than recovery.replay.timeout_ms); resume again shortly")
            return
        }
        run(job)
    }

    private func run(_ job: Job) {
        let started = DispatchTime.now().uptimeNanoseconds
        let reader = ReplayCollector(job: job, mapper: mapper, maxMessages: configuration.maxReplayMessages,
                                     pace: ReplayPace(recordsPerSecond: configuration.replayRecordsPerSecond, startNs: started))
        do {
            switch try source.replay(job.request, timeoutMs: configuration.replayTimeoutMs, reader: reader) {
            case .staleEpoch(let current):
                job.stale(current)
            case .stopped:
                reader.finishStopped()
            }
        } catch {
            job.failed(.replayFailed, "cannot read the missed messages from the source: \(error.reason)")
        }
        logger.debug("replay of \(job.endpoint) from \(job.request.topic)[\(job.request.partition)]@\(job.request.fromOffset): \(reader.summary) in \((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) ms")
    }
}

/// Collects what a replay reads for one endpoint and finishes the
/// subscription as soon as the read reaches what the cache covers. Used by
/// one replay thread.
final class ReplayCollector: ReplayReader {
    private let job: SourceReplayer.Job
    private let mapper: any EndpointMapper
    private let maxMessages: Int
    private var pace: ReplayPace
    /// The endpoint's records read so far; released with the collector unless taken.
    private let frames = OwnedFrames()
    private var lost: ClosedRange<Int64>?
    /// Where the cache was complete from at the last look.
    private var target: Int64
    /// How many records the finished subscription took (for the log).
    private var finished: Int?
    private var tooLarge = false

    init(job: SourceReplayer.Job, mapper: any EndpointMapper, maxMessages: Int, pace: ReplayPace) {
        self.job = job
        self.mapper = mapper
        self.maxMessages = maxMessages
        self.pace = pace
        target = job.coveredFrom
    }

    var summary: String { finished.map { "finished with \($0) records" } ?? (tooLarge ? "too large" : "not finished") }

    func logStarts(at offset: Int64) {
        if offset > job.request.fromOffset { lost = job.request.fromOffset...(offset - 1) }
    }

    func read(_ record: SourceRecord) -> Bool {
        pace.recordRead()
        if pace.read % 1024 == 0 && !job.isWanted() { return false }
        if let key = record.key, mapper.endpoint(topic: record.topic, key: key) == job.endpoint {
            guard frames.count < maxMessages else {
                tooLarge = true
                return false
            }
            if let frame = DeliveryFrame.make(
                endpoint: job.endpoint, epoch: record.epoch, seq: record.offset, timestampMs: record.timestampMs,
                payload: record.value)
            {
                frames.append(frame)
            }
        }
        return record.offset + 1 >= target ? attempt(position: record.offset + 1) : true
    }

    func caughtUp(nextOffset: Int64) -> Bool { job.isWanted() && attempt(position: nextOffset) }

    /// True to read on.
    private func attempt(position: Int64) -> Bool {
        let count = frames.count
        switch job.attempt(position, frames, lost) {
        case .finished:
            finished = count
            return false
        case .readOn(let until):
            target = until
            return true
        }
    }

    /// The read stopped: finished, or stopped for being too large.
    func finishStopped() {
        guard finished == nil else { return }
        job.failed(
            .replayTooLarge,
            tooLarge ? "more than recovery.replay.max_messages messages were missed; subscribe without \"from\" to go on live"
                : "the read from the source stopped before it caught up")
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
