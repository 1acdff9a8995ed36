import Foundation
import Logging
import ServiceLifecycle

/// Drains the node on SIGTERM before anything else stops: the last service
/// of the group, so the first the group tells to shut down, while the source,
/// the replay readers and the loops still serve.
///
/// It refuses new connections, tells every client to move to another node
/// (`moving`, docs/protocol.md), and waits until they have left or the grace
/// period ended. Only then does the group stop the source and the loops,
/// which close whoever stayed with 1001. Clients resume their positions on
/// the other nodes, so a rolling restart loses no message and the moves are
/// spread over `reconnect_within_ms` instead of arriving at once.
struct DrainService: Service {
    let server: FanoutServer
    let gracePeriod: Duration
    let reconnectWithin: Duration
    let logger: Logger
    /// How often the open connections are counted while waiting.
    var pollInterval: Duration = .milliseconds(50)

    func run() async throws {
        try? await gracefulShutdown()
        guard gracePeriod > .zero else { return }
        let told = server.stats().connections_open
        server.drain(notice: ClientProtocol.moving(reconnectWithinMs: Int(reconnectWithin.milliseconds)))
        logger.info(
            "draining: refusing new connections, told every client to move",
            metadata: ["connections": "\(told)", "grace_period_ms": "\(gracePeriod.milliseconds)",
                       "reconnect_within_ms": "\(reconnectWithin.milliseconds)"])
        let clock = ContinuousClock()
        let began = clock.now
        var open = server.stats().connections_open
        while open > 0, clock.now - began < gracePeriod, !Task.isCancelled {
            try? await Task.sleep(for: pollInterval)
            open = server.stats().connections_open
        }
        let elapsed = (clock.now - began).milliseconds
        if open == 0 {
            logger.info("drained: every client left", metadata: ["after_ms": "\(elapsed)"])
        } else {
            logger.info(
                "grace period over: closing the connections still open",
                metadata: ["connections": "\(open)", "after_ms": "\(elapsed)"])
        }
    }
}

extension Duration {
    /// Whole milliseconds (truncated).
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}
