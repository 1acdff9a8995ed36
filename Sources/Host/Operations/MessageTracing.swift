import Logging
import OTel
import ServiceLifecycle
import Tracing

/// Spans of traced messages (`tracing.export`), so one message can be
/// followed from its producer through the gateway to the browser: a
/// `deliver <topic>` span for a record that carries a `traceparent`, from
/// its arrival to its hand-over to the event loops, and a `publish <topic>`
/// span for a client publish that carries one, until Kafka acknowledges it.
/// Each span is a child of the trace context the message came with, and the
/// message goes on with the span's own context (in the delivery frame, in
/// the produced record's header), so the next hop is its child in turn.
///
/// Messages without trace context get no span: the gateway starts no
/// traces of its own, and untraced traffic costs nothing here.
struct MessageTracing: Sendable {
    private let tracer: any Tracer

    init(tracer: any Tracer) {
        self.tracer = tracer
    }

    /// A span begun for one message, and the `traceparent` naming it.
    struct Traced {
        let span: any Span
        let traceParent: String
    }

    /// The span of a record's delivery; nil when `traceParent` names no trace.
    func delivery(traceParent: String, topic: String, partition: Int32, offset: Int64, endpoint: String) -> Traced? {
        begin("deliver \(topic)", kind: .consumer, parent: traceParent) { attributes in
            attributes["messaging.system"] = "kafka"
            attributes["messaging.operation.type"] = "process"
            attributes["messaging.destination.name"] = topic
            attributes["messaging.destination.partition.id"] = "\(partition)"
            attributes["messaging.kafka.offset"] = Int(offset)
            attributes["streamgate.endpoint"] = endpoint
        }
    }

    /// The span of a client publish; nil when `traceParent` names no trace.
    func publish(traceParent: String, topic: String, endpoint: String, subject: String) -> Traced? {
        begin("publish \(topic)", kind: .producer, parent: traceParent) { attributes in
            attributes["messaging.system"] = "kafka"
            attributes["messaging.operation.type"] = "send"
            attributes["messaging.destination.name"] = topic
            attributes["streamgate.endpoint"] = endpoint
            attributes["streamgate.subject"] = subject
        }
    }

    private func begin(_ name: String, kind: SpanKind, parent traceParent: String,
                       attributes: (inout SpanAttributes) -> Void) -> Traced?
    {
        var parent = ServiceContext.topLevel
        tracer.extract(["traceparent": traceParent], into: &parent, using: TraceHeaders())
        let span = tracer.startSpan(name, context: parent, ofKind: kind)
        span.updateAttributes(attributes)
        var carrier: [String: String] = [:]
        tracer.inject(span.context, into: &carrier, using: TraceHeaders())
        guard let own = carrier["traceparent"], own.utf8.count == 55 else {
            span.end()
            return nil
        }
        return Traced(span: span, traceParent: own)
    }

    /// The tracer exporting over OTLP/HTTP, and the service that batches and
    /// sends its spans (it must run, and stop last, to flush them).
    static func make(_ settings: TraceExportSettings, logger: Logger) throws -> (MessageTracing, any Service) {
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.serviceName
        configuration.diagnosticLogger = .custom(logger)
        configuration.propagators = [.traceContext]
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.endpoint = settings.endpoint
        configuration.traces.otlpExporter.protocol = settings.protocolName == "http/json" ? .httpJSON : .httpProtobuf
        configuration.traces.otlpExporter.headers = settings.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        // The parent's sampling decision holds: a traced message is sampled where it began.
        configuration.traces.sampler = .parentBasedAlwaysOn
        configuration.traces.batchSpanProcessor.scheduleDelay = .milliseconds(settings.scheduleDelayMs)
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        return (MessageTracing(tracer: tracer), service)
    }
}

/// Where `tracing.export` sends spans.
struct TraceExportSettings: Sendable, Equatable {
    /// The OTLP/HTTP traces URL, used as is (e.g. `http://127.0.0.1:4318/v1/traces`).
    var endpoint: String
    /// `http/protobuf` or `http/json`.
    var protocolName = "http/protobuf"
    var serviceName = "streamgate"
    /// Sent with every export (a collector's credentials: secrets allowed).
    var headers: [String: String] = [:]
    /// How long spans wait to be sent in one batch.
    var scheduleDelayMs = 1000
}

/// A trace context carrier as plain header names and values.
private struct TraceHeaders: Extractor, Injector {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}
