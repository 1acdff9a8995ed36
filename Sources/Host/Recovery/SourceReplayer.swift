import CFanout
import Foundation
import Logging
import StreamgatePluginAPI
import ServiceLifecycle
import Synchronization

/// Reads a partition again from the source for resuming clients (tiered
/// replay), on a few threads of its own: at most
/// `recovery.replay.max_concurrent` reads run at once, each keeps at most
/// `recovery.replay.max_messages` and paces itself, so one client cannot
/// starve the others or make the node buffer a whole log. Waiting reads are
/// bounded too.
///
/// A Service: its reader threads run from `run` until graceful shutdown
/// (reads block in librdkafka, so they get threads of their own rather than
/// the cooperative pool); reads queued before `run` wait for it.
final class SourceReplayer: Service {
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
    private let framing: RecordFraming
    private let configuration: RecoveryConfiguration
    private let logger: Logger
    private let jobs = Mutex<[Job]>([])
    private let available = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)
    private let refused = Atomic<UInt64>(0)
    private let started = Atomic<UInt64>(0)
    private let expired = Atomic<UInt64>(0)

    /// Reads waiting for a reader thread now.
    var queueDepth: Int { jobs.withLock { $0.count } }
    /// Reads refused (queue full), started, and given up after waiting longer than a read may take.
    var readsRefused: UInt64 { refused.load(ordering: .relaxed) }
    var readsStarted: UInt64 { started.load(ordering: .relaxed) }
    var readsExpired: UInt64 { expired.load(ordering: .relaxed) }

    init(source: any ReplayableSource, mapper: any EndpointMapper, framing: RecordFraming = RecordFraming(),
         configuration: RecoveryConfiguration, logger: Logger)
    {
        self.source = source
        self.mapper = mapper
        self.framing = framing
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs the reader threads until graceful shutdown (or cancellation),
    /// then fails what is still queued and returns once every thread is done.
    func run() async throws {
        let running = DispatchGroup()
        for i in 0..<configuration.replayConcurrency {
            running.enter()
            let thread = Thread { [self] in
                work()
                running.leave()
            }
            thread.name = "replay-\(i)"
            thread.start()
        }
        try? await gracefulShutdown()
        stop()
        await withCheckedContinuation { done in running.notify(queue: .global()) { done.resume() } }
    }

    /// Queues a read; false when too many are waiting already.
    func fetch(_ job: Job) -> Bool {
        let accepted = jobs.withLock { queue -> Bool in
            guard queue.count < Self.maxWaitingJobs, !stopped.load(ordering: .relaxed) else { return false }
            queue.append(job)
            return true
        }
        if accepted { available.signal() } else { refused.add(1, ordering: .relaxed) }
        return accepted
    }

    /// Lets the reader threads finish; queued and later jobs fail.
    private func stop() {
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
            expired.add(1, ordering: .relaxed)
            job.failed(.replayFailed, "this node's reads from the source are busy (waited \(waitedMs) ms, more than recovery.replay.timeout_ms); resume again shortly")
            return
        }
        started.add(1, ordering: .relaxed)
        run(job)
    }

    private func run(_ job: Job) {
        let started = DispatchTime.now().uptimeNanoseconds
        let reader = ReplayCollector(job: job, mapper: mapper, framing: framing, maxMessages: configuration.maxReplayMessages,
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

