import Hummingbird
import Logging
import NIOCore

/// The admin listener (`admin` in the configuration): what operators and
/// their tooling ask a node, kept off the clients' port so it can stay on a
/// private address.
///
/// - `GET /metrics`: Prometheus text format (`GatewayMetrics`).
/// - `GET /healthz`: 200 while the process serves (liveness).
/// - `GET /readyz`: 200 once the source consumes, 503 before and while the
///   node drains (readiness, as the clients' port answers it).
struct AdminServer {
    enum Readiness: Sendable {
        case notReady, ready, draining
    }

    let host: String
    let port: Int
    let metrics: GatewayMetrics
    let readiness: @Sendable () -> Readiness

    func application(logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        let metrics = self.metrics
        let readiness = self.readiness
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition())))
        }
        router.get("/healthz") { _, _ in Self.text(.ok, "ok\n") }
        router.get("/readyz") { _, _ in
            switch readiness() {
            case .ready: Self.text(.ok, "ready\n")
            case .notReady: Self.text(.serviceUnavailable, "not ready\n")
            case .draining: Self.text(.serviceUnavailable, "draining\n")
            }
        }
        let (host, port) = (self.host, self.port)
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "streamgate-admin"),
            onServerRunning: { channel in
                logger.info("admin listening", metadata: ["url": "http://\(host.contains(":") ? "[\(host)]" : host):\(channel.localAddress?.port ?? port)", "paths": "/metrics /healthz /readyz"])
            },
            logger: logger)
    }

    private static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
