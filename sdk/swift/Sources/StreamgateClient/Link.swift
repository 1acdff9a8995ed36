import Synchronization
import WSClient

/// Work a connection runs beside its reader (a subscribe, a token refresh, a
/// delayed resume): it ends with the connection.
typealias ConnectionJob = @Sendable () async -> Void

/// One live connection to one node: where to write, where to queue its jobs, and
/// when the gateway was last heard from (for the liveness check).
final class Link: Sendable {
    let url: String
    private let outbound: WebSocketOutboundWriter
    private let jobs: AsyncStream<ConnectionJob>.Continuation
    private let heard: Mutex<(lastFrame: ContinuousClock.Instant, lastPing: ContinuousClock.Instant)>
    /// Set when the client leaves the node because it drains (`moving`).
    let moved: ConnectionFlag
    private let moveScheduled = Atomic<Bool>(false)

    init(url: String, outbound: WebSocketOutboundWriter, jobs: AsyncStream<ConnectionJob>.Continuation,
         moved: ConnectionFlag) {
        self.url = url
        self.outbound = outbound
        self.jobs = jobs
        self.moved = moved
        let now = ContinuousClock.now
        heard = Mutex((now, now))
    }

    func send(_ text: String) async throws { try await outbound.writeTextMessage(text) }

    /// Sends a close frame (1000); gives up after `limit`, so a peer that stopped
    /// reading cannot hold `close()`.
    func close(within limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await self.outbound.close(.normalClosure, reason: nil) }
            group.addTask { try? await Task.sleep(for: limit) }
            _ = await group.next()
            group.cancelAll()
        }
    }

    /// True the first time only: a node that repeats `moving` gets one move.
    func scheduleMove() -> Bool {
        moveScheduled.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
    }

    /// Runs `job` beside the reader, on this connection.
    func run(_ job: @escaping ConnectionJob) { jobs.yield(job) }

    /// No more jobs: those running end with the connection.
    func finishJobs() { jobs.finish() }

    /// A frame arrived.
    func touch() { heard.withLock { $0.lastFrame = .now } }

    /// How long the gateway has been silent.
    func silence() -> Duration { heard.withLock { .now - $0.lastFrame } }

    /// True (and remembers it) when no liveness ping went out within `interval`.
    func pingDue(every interval: Duration) -> Bool {
        heard.withLock {
            guard .now - $0.lastPing >= interval else { return false }
            $0.lastPing = .now
            return true
        }
    }
}

/// Something that became true on a connection and stays so: a node welcomed the
/// client (a successful connection resets the backoff), or the client left a
/// draining node on its request (the next connect needs no backoff).
final class ConnectionFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
