import Synchronization
import Testing

@testable import streamgate

/// A scrape copies the counters where they are kept into the registry.
@Suite("Gateway metrics")
struct GatewayMetricsTests {
    @Test func aScrapeCopiesTheReadingsAndCountersNeverGoBack() {
        let readings = Mutex(GatewayMetrics.Readings())
        let metrics = GatewayMetrics { readings.withLock { $0 } }
        func sample(_ name: String) -> String? {
            String(decoding: metrics.exposition(), as: UTF8.self).split(separator: "\n")
                .first { $0.hasPrefix(name + " ") }.map { String($0.dropFirst(name.count + 1)) }
        }
        #expect(sample("streamgate_messages_delivered_total") == "0")
        readings.withLock {
            $0.messagesDelivered = 1_234
            $0.connectionsOpen = 7
            $0.refusedByOrigin = 2
            $0.ready = 1
        }
        #expect(sample("streamgate_messages_delivered_total") == "1234")
        #expect(sample("streamgate_connections_open") == "7.0")
        #expect(sample("streamgate_connections_refused_total{reason=\"origin\"}") == "2")
        #expect(sample("streamgate_ready") == "1.0")
        readings.withLock {
            $0.messagesDelivered = 2_000
            $0.connectionsOpen = 3
        }
        #expect(sample("streamgate_messages_delivered_total") == "2000", "moved by the difference")
        #expect(sample("streamgate_connections_open") == "3.0", "a gauge is set")
        readings.withLock { $0.messagesDelivered = 10 }
        #expect(sample("streamgate_messages_delivered_total") == "2000", "a counter never goes back")
    }
}
