import Prometheus
import Synchronization

/// The gateway's metrics, in Prometheus' text format (swift-prometheus).
///
/// Most of what is measured is already counted where it happens, without
/// locks: the C loops' per-loop counters, the router's and the publish
/// gate's atomics, the cache's totals. Counting it a second time on the hot
/// path would cost every message; instead a scrape reads those counters
/// (`Readings`) and copies them into the registry: counters move on by the
/// difference since the last scrape, gauges are set. Scrapes are serialized
/// by the registry's caller (`exposition()` holds a lock while it copies).
final class GatewayMetrics: Sendable {
    /// Every value a scrape copies, read from where it is counted.
    struct Readings: Sendable {
        var connectionsOpen: UInt64 = 0
        var connectionsAccepted: UInt64 = 0
        var refusedByLimit: UInt64 = 0
        var refusedByOrigin: UInt64 = 0
        var badHandshakes: UInt64 = 0
        var handshakeTimeouts: UInt64 = 0
        var slowConsumerCloses: UInt64 = 0
        var idleCloses: UInt64 = 0
        var protocolErrors: UInt64 = 0
        var messagesDelivered: UInt64 = 0
        var bytesWritten: UInt64 = 0
        var writeCalls: UInt64 = 0
        var delayedWritePeriods: UInt64 = 0
        var recordsRouted: UInt64 = 0
        var recordsUnroutable: UInt64 = 0
        var publishesRateLimited: UInt64 = 0
        var publishesForbidden: UInt64 = 0
        var publishesUnresolved: UInt64 = 0
        var publishesUnsupported: UInt64 = 0
        var publishesProduced: UInt64 = 0
        var publishesFailed: UInt64 = 0
        var connectionsWelcomed: UInt64 = 0
        var connectionsUnauthorized: UInt64 = 0
        var credentialsExpired: UInt64 = 0
        var credentialsRevoked: UInt64 = 0
        var subscriptionsOverLimit: UInt64 = 0
        var connectionsIdentified: UInt64 = 0
        var subscriptions: UInt64 = 0
        var cacheMessages: UInt64 = 0
        var cacheBytes: UInt64 = 0
        var cacheEndpoints: UInt64 = 0
        /// 1 once the source consumes.
        var ready: UInt64 = 0
        var cacheEvictions: UInt64 = 0
        var replayQueueDepth: UInt64 = 0
        var replaysStarted: UInt64 = 0
        var replaysRefused: UInt64 = 0
        var replaysExpired: UInt64 = 0
        /// 1 once SIGTERM started the drain.
        var draining: UInt64 = 0
        var refusedWhileDraining: UInt64 = 0
        var tlsHandshakeFailures: UInt64 = 0
    }

    let registry = PrometheusCollectorRegistry()
    private let read: @Sendable () -> Readings
    /// Families written beside the registry's (`PrometheusText`).
    private let supplement: @Sendable (inout PrometheusText) -> Void
    /// The counters, each with the reading it stands for.
    private let counters: [(counter: Counter, value: KeyPath<Readings, UInt64> & Sendable)]
    private let gauges: [(gauge: Gauge, value: KeyPath<Readings, UInt64> & Sendable)]
    /// What each counter was last moved to (the registry only adds).
    private let copied: Mutex<[UInt64]>

    init(read: @escaping @Sendable () -> Readings,
         supplement: @escaping @Sendable (inout PrometheusText) -> Void = { _ in }) {
        self.read = read
        self.supplement = supplement
        let r = registry
        func named(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "streamgate", metricName: name, unitName: "", helpText: help)
        }
        func counter(_ name: String, _ labels: [(String, String)] = [], _ help: String) -> Counter {
            r.makeCounter(descriptor: named(name, help), labels: labels)
        }
        func gauge(_ name: String, _ help: String) -> Gauge { r.makeGauge(descriptor: named(name, help), labels: []) }
        let refused = "WebSocket upgrades refused, by reason"
        let closed = "Connections the gateway closed, by reason"
        let replays = "Reads from the source for resumes older than the cache: started, refused (queue full), expired (waited longer than a read may take)"
        let publishRefused = "Client publishes refused before Kafka, by reason"
        let published = "Client publishes handed to Kafka, by Kafka's answer"
        let authenticated = "First authentications of connections, by result"
        let withdrawn = "Live connections whose credentials expired or were revoked"
        counters = [
            (counter("connections_accepted_total", [], "TCP connections accepted"), \.connectionsAccepted),
            (counter("connections_refused_total", [("reason", "limit")], refused), \.refusedByLimit),
            (counter("connections_refused_total", [("reason", "origin")], refused), \.refusedByOrigin),
            (counter("connections_refused_total", [("reason", "bad_handshake")], refused), \.badHandshakes),
            (counter("connections_refused_total", [("reason", "handshake_timeout")], refused), \.handshakeTimeouts),
            (counter("connections_refused_total", [("reason", "draining")], refused), \.refusedWhileDraining),
            (counter("connections_refused_total", [("reason", "tls_handshake")], refused), \.tlsHandshakeFailures),
            (counter("connections_closed_total", [("reason", "slow_consumer")], closed), \.slowConsumerCloses),
            (counter("connections_closed_total", [("reason", "idle")], closed), \.idleCloses),
            (counter("connections_closed_total", [("reason", "protocol_error")], closed), \.protocolErrors),
            (counter("messages_delivered_total", [], "Frames queued to subscribers (one per subscriber and message)"), \.messagesDelivered),
            (counter("bytes_written_total", [], "Bytes written to client sockets"), \.bytesWritten),
            (counter("write_calls_total", [], "Gathered socket writes (sendmsg calls and io_uring sends)"), \.writeCalls),
            (counter("delayed_write_periods_total", [], "Half-second periods a loop delayed its writes (overload)"), \.delayedWritePeriods),
            (counter("records_routed_total", [], "Source records framed and fanned out"), \.recordsRouted),
            (counter("records_unroutable_total", [], "Source records that map to no endpoint"), \.recordsUnroutable),
            (counter("publishes_refused_total", [("reason", "rate_limited")], publishRefused), \.publishesRateLimited),
            (counter("publishes_refused_total", [("reason", "forbidden")], publishRefused), \.publishesForbidden),
            (counter("publishes_refused_total", [("reason", "unresolved")], publishRefused), \.publishesUnresolved),
            (counter("publishes_refused_total", [("reason", "unsupported")], publishRefused), \.publishesUnsupported),
            (counter("publishes_total", [("result", "ok")], published), \.publishesProduced),
            (counter("publishes_total", [("result", "failed")], published), \.publishesFailed),
            (counter("cache_evictions_total", [], "Messages the endpoint caches evicted (age or size bounds)"), \.cacheEvictions),
            (counter("replays_total", [("result", "started")], replays), \.replaysStarted),
            (counter("replays_total", [("result", "refused")], replays), \.replaysRefused),
            (counter("replays_total", [("result", "expired")], replays), \.replaysExpired),
            (counter("authentications_total", [("result", "welcomed")], authenticated), \.connectionsWelcomed),
            (counter("authentications_total", [("result", "refused")], authenticated), \.connectionsUnauthorized),
            (counter("credentials_withdrawn_total", [("reason", "expired")], withdrawn), \.credentialsExpired),
            (counter("credentials_withdrawn_total", [("reason", "revoked")], withdrawn), \.credentialsRevoked),
            (counter("subscriptions_refused_total", [("reason", "too_many")], "Subscribes refused, by reason"), \.subscriptionsOverLimit),
        ]
        gauges = [
            (gauge("connections_open", "WebSocket connections open now"), \.connectionsOpen),
            (gauge("sessions_identified", "Connections whose credentials were accepted"), \.connectionsIdentified),
            (gauge("subscriptions", "Subscriptions open now, over all connections"), \.subscriptions),
            (gauge("cache_messages", "Messages held in the endpoint caches"), \.cacheMessages),
            (gauge("cache_bytes", "Bytes held in the endpoint caches"), \.cacheBytes),
            (gauge("cache_endpoints", "Endpoints with a cache"), \.cacheEndpoints),
            (gauge("replay_queue_depth", "Reads from the source waiting for a reader thread"), \.replayQueueDepth),
            (gauge("ready", "1 once the source consumes, 0 again while draining (what /readyz says)"), \.ready),
            (gauge("draining", "1 once SIGTERM started the drain: clients were told to move"), \.draining),
        ]
        copied = Mutex(Array(repeating: 0, count: counters.count))
    }

    /// The text a scrape answers (`text/plain; version=0.0.4`).
    func exposition() -> [UInt8] {
        let readings = read()
        copied.withLock { copied in
            for (index, entry) in counters.enumerated() {
                let now = readings[keyPath: entry.value]
                if now > copied[index] {
                    entry.counter.increment(by: Int64(now - copied[index]))
                    copied[index] = now
                }
            }
            for entry in gauges { entry.gauge.set(Double(readings[keyPath: entry.value])) }
        }
        var text = PrometheusText()
        supplement(&text)
        return registry.emitToBuffer() + text.bytes
    }
}
