import CFanout
import Foundation
import StreamgatePluginAPI
import Synchronization
import Tracing

/// Client publishes: resolve the endpoint, check the connection's rights and
/// its rate (a token bucket per connection), produce through the source, and
/// answer `published` with the partition and offset when Kafka acknowledges
/// (or an error when it refuses).
final class PublishGate: Sendable {
    struct Settings: Sendable {
        /// Whether records carry the publisher's subject and address as Kafka headers.
        var headers = true
        /// `tracing.propagate`: a publish's `traceparent` becomes the record's header.
        var traceContext = false
        var ratePerSecond = 100
        var burst = 200
        /// Spans of traced publishes (`tracing.export`); nil: none.
        var tracing: MessageTracing?
    }

    private let table: SessionTable
    private let resolver: EndpointResolver
    /// nil: the source takes no publishes, and every publish is refused.
    private let publisher: (any PublishingSource)?
    private let fanout: any FanoutPort
    private let settings: Settings
    private let limited = Atomic<UInt64>(0)
    private let forbidden = Atomic<UInt64>(0)
    private let unresolved = Atomic<UInt64>(0)
    private let unsupported = Atomic<UInt64>(0)
    private let produced = Atomic<UInt64>(0)
    private let failed = Atomic<UInt64>(0)

    init(table: SessionTable, resolver: EndpointResolver, publisher: (any PublishingSource)?, fanout: any FanoutPort,
         settings: Settings)
    {
        self.table = table
        self.resolver = resolver
        self.publisher = publisher
        self.fanout = fanout
        self.settings = settings
    }

    /// Publishes refused for going over `limits.publish_rate_per_second`.
    var rateLimited: UInt64 { limited.load(ordering: .relaxed) }
    /// Publishes refused because the identity's rights do not allow them.
    var refusedForbidden: UInt64 { forbidden.load(ordering: .relaxed) }
    /// Publishes to an endpoint that maps to no Kafka address.
    var refusedUnresolved: UInt64 { unresolved.load(ordering: .relaxed) }
    /// Publishes to a gateway whose source takes none.
    var refusedUnsupported: UInt64 { unsupported.load(ordering: .relaxed) }
    /// Publishes Kafka acknowledged / refused.
    var producedCount: UInt64 { produced.load(ordering: .relaxed) }
    var failedCount: UInt64 { failed.load(ordering: .relaxed) }

    func publish(_ conn: cf_conn_id, endpoint: String, payload: [UInt8], traceParent: String? = nil, id: JSONValue?) {
        guard let publisher else {
            unsupported.add(1, ordering: .relaxed)
            return fanout.sendText(conn, ClientProtocol.error(
                .unsupported, "this gateway's source does not take publishes", endpoint: endpoint, id: id))
        }
        let address: KafkaAddress
        let canonical: String
        switch resolver.resolve(endpoint, id: id) {
        case .refused(let reply):
            unresolved.add(1, ordering: .relaxed)
            return fanout.sendText(conn, reply)
        case .found(let found, let name):
            address = found
            canonical = name ?? endpoint
        }
        guard let session = table.session(conn), let identity = session.identity else { return }
        if let refusal = AccessPolicy.refusal(of: .publish, to: canonical, by: identity) {
            forbidden.add(1, ordering: .relaxed)
            return fanout.sendText(conn, ClientProtocol.error(refusal.code, refusal.message, endpoint: endpoint, id: id))
        }
        guard takeToken(conn) else {
            limited.add(1, ordering: .relaxed)
            return fanout.sendText(conn, ClientProtocol.error(
                .rateLimited, "more than \(settings.ratePerSecond) publishes per second (burst \(settings.burst)): slow down",
                endpoint: endpoint, id: id))
        }
        var headers = settings.headers
            ? [PublishHeader(name: "streamgate-subject", value: Array(identity.subject.utf8)),
               PublishHeader(name: "streamgate-client", value: Array(session.info.remoteAddress.utf8))]
            : []
        var traced: MessageTracing.Traced?
        if settings.traceContext, let traceParent {
            guard TraceParent.isValid(traceParent.utf8) else {
                return fanout.sendText(conn, ClientProtocol.error(
                    .badRequest, "\"traceparent\" is not a W3C trace context (00-<32 hex>-<16 hex>-<2 hex>)",
                    endpoint: endpoint, id: id))
            }
            // The record carries the gateway's publish span's context when spans
            // are exported (the consumers' work is its child), else the client's.
            traced = settings.tracing?.publish(
                traceParent: traceParent, topic: address.topic, endpoint: canonical, subject: identity.subject)
            headers.append(PublishHeader(name: "traceparent", value: Array((traced?.traceParent ?? traceParent).utf8)))
        }
        let fanout = self.fanout
        publisher.publish(PublishRequest(topic: address.topic, key: Array(address.key.utf8), value: payload, headers: headers)) {
            [self, traced] result in
            switch result {
            case .success(let receipt):
                traced?.span.updateAttributes { attributes in
                    attributes["messaging.destination.partition.id"] = "\(receipt.partition)"
                    attributes["messaging.kafka.offset"] = Int(receipt.offset)
                }
                traced?.span.end()
                produced.add(1, ordering: .relaxed)
                fanout.sendText(conn, ClientProtocol.published(
                    endpoint: canonical, partition: receipt.partition, offset: receipt.offset, id: id))
            case .failure(let error):
                traced?.span.setStatus(SpanStatus(code: .error, message: error.reason))
                traced?.span.end()
                failed.add(1, ordering: .relaxed)
                fanout.sendText(conn, ClientProtocol.error(
                    .publishFailed, "Kafka did not take the record: \(error.reason)", endpoint: canonical, id: id))
            }
        }
    }

    /// Takes one publish from the connection's bucket (full at its first publish).
    private func takeToken(_ conn: cf_conn_id, now: Double = Double(DispatchTime.now().uptimeNanoseconds) / 1e9) -> Bool {
        let rate = Double(settings.ratePerSecond), burst = Double(settings.burst)
        return table.withSession(conn) { session in
            var bucket = session.publishBucket ?? TokenBucket(rate: rate, burst: burst, now: now)
            defer { session.publishBucket = bucket }
            return bucket.take(now: now)
        } ?? false
    }
}
