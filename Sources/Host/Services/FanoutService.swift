import Logging
import ServiceLifecycle

/// Keeps the C loops serving until graceful shutdown, then closes every
/// connection with 1001 and joins the loops.
struct FanoutService: Service {
    let server: FanoutServer
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down: closing client connections")
        server.stop()
    }
}
