import Logging
import StreamgatePluginAPI
import Synchronization
import Tracing

/// Where source records enter the fan-out: each record is mapped to its
/// endpoint and framed once; a source's batch is cached and handed to the
/// loops as one batch (one lock and at most one wake-up per loop), which is
/// most of the cost of a message at low rates.
final class MessageRouter: MessageSink {
    /// Records of the current batch. Sources call deliver/endOfBatch from
    /// one thread at a time; the lock is uncontended.
    private let pending = Mutex<PendingBatch>(PendingBatch())
    private static let maxBatch = 1024
    private let mapper: any EndpointMapper
    private let framing: RecordFraming
    private let fanout: any RoutedRecordSink
    private let readiness: any FanoutPort
    private let logger: Logger
    /// Spans of traced records (`tracing.export`); nil: none.
    private let tracing: MessageTracing?
    private let routed = Atomic<UInt64>(0)
    private let unroutable = Atomic<UInt64>(0)
    private let ready = Atomic<Bool>(false)
    /// Records consumed and positions, per partition (metrics: consumer lag).
    let progress = PartitionProgress()

    init(mapper: any EndpointMapper, framing: RecordFraming = RecordFraming(), fanout: any RoutedRecordSink,
         readiness: any FanoutPort, tracing: MessageTracing? = nil, logger: Logger)
    {
        self.tracing = tracing
        self.mapper = mapper
        self.framing = framing
        self.fanout = fanout
        self.readiness = readiness
        self.logger = logger
    }

    /// Records framed and published.
    var routedCount: UInt64 { routed.load(ordering: .relaxed) }
    /// Records that belong to no endpoint (no key, or a key that is not UTF-8).
    var unroutableCount: UInt64 { unroutable.load(ordering: .relaxed) }
    /// The source consumes (what /readyz answers).
    var isReady: Bool { ready.load(ordering: .acquiring) }

    func deliver(_ record: SourceRecord) {
        progress.consumed(topic: record.topic, partition: record.partition, offset: record.offset)
        guard let key = record.key, let endpoint = mapper.endpoint(topic: record.topic, key: key) else {
            unroutable.add(1, ordering: .relaxed)
            return
        }
        var traced: MessageTracing.Traced?
        if let tracing, let candidate = record.traceParent, TraceParent.isValid(candidate) {
            traced = tracing.delivery(
                traceParent: String(decoding: candidate, as: UTF8.self), topic: record.topic,
                partition: record.partition, offset: record.offset, endpoint: endpoint)
        }
        guard let frame = framing.frame(record, endpoint: endpoint, gatewaySpan: traced?.traceParent) else {
            logger.error("cannot frame a record of \(record.topic)[\(record.partition)]@\(record.offset): out of memory")
            traced?.span.end()
            return
        }
        routed.add(1, ordering: .relaxed)
        let full = pending.withLock { batch in
            batch.records.append(RoutedRecord(
                endpoint: endpoint, partition: PartitionID(topic: record.topic, partition: record.partition),
                epoch: record.epoch, offset: record.offset, frame: frame))
            if let traced { batch.spans.append(traced.span) }
            return batch.records.count >= Self.maxBatch
        }
        if full { endOfBatch() }
    }

    func endOfBatch() {
        let spans = pending.withLock { batch -> [any Span] in
            guard !batch.records.isEmpty else { return [] }
            fanout.publish(batch.records)
            batch.records.removeAll(keepingCapacity: true)
            defer { batch.spans.removeAll() }
            return batch.spans
        }
        // A delivery span ends when its record is handed to the loops.
        for span in spans { span.end() }
    }

    func partitionStarted(_ start: PartitionStart) {
        endOfBatch()
        progress.started(start)
        fanout.partitionStarted(start)
    }

    func sourceIsReady() {
        readiness.setReady(true)
        ready.store(true, ordering: .releasing)
        logger.info("source ready: GET /readyz now answers 200")
    }
}

/// The records of a source batch not yet handed over.
struct PendingBatch {
    var records: [RoutedRecord] = []
    /// The delivery spans of the batch's traced records.
    var spans: [any Span] = []
}
