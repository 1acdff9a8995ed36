import Logging
import StreamgatePluginAPI
import Synchronization

/// Where source records enter the fan-out: each record is mapped to its
/// endpoint and framed once; a source's batch is handed to the loops as one
/// batch (one lock and at most one wake-up per loop), which is most of the
/// cost of a message at low rates.
final class MessageRouter: MessageSink {
    /// Frames of the current batch. Sources call deliver/endOfBatch from one
    /// thread at a time; the lock is uncontended.
    /// Held as addresses: a plain integer array is Sendable, and has the
    /// layout of the `cf_frame **` the C batch call takes.
    private let pending = Mutex<[UInt]>([])
    private static let maxBatch = 1024
    private let mapper: any EndpointMapper
    private let fanout: FanoutHandle
    private let logger: Logger
    private let routed = Atomic<UInt64>(0)
    private let unroutable = Atomic<UInt64>(0)

    init(mapper: any EndpointMapper, fanout: FanoutHandle, logger: Logger) {
        self.mapper = mapper
        self.fanout = fanout
        self.logger = logger
    }

    /// Records framed and published.
    var routedCount: UInt64 { routed.load(ordering: .relaxed) }
    /// Records that belong to no endpoint (no key, or a key that is not UTF-8).
    var unroutableCount: UInt64 { unroutable.load(ordering: .relaxed) }

    func deliver(_ record: SourceRecord) {
        guard let key = record.key, let endpoint = mapper.endpoint(topic: record.topic, key: key) else {
            unroutable.add(1, ordering: .relaxed)
            return
        }
        guard let frame = DeliveryFrame.make(
            endpoint: endpoint, epoch: record.epoch, seq: record.offset, timestampMs: record.timestampMs,
            payload: record.value)
        else {
            logger.error("cannot frame a record of \(record.topic)[\(record.partition)]@\(record.offset): out of memory")
            return
        }
        routed.add(1, ordering: .relaxed)
        let full = pending.withLock { frames in
            frames.append(UInt(bitPattern: frame))
            return frames.count >= Self.maxBatch
        }
        if full { endOfBatch() }
    }

    func endOfBatch() {
        pending.withLock { frames in
            guard !frames.isEmpty else { return }
            frames.withUnsafeBufferPointer { addresses in
                addresses.withMemoryRebound(to: OpaquePointer?.self) { fanout.publish(batch: $0) }
            }
            frames.removeAll(keepingCapacity: true)
        }
    }

    func sourceIsReady() {
        fanout.setReady(true)
        logger.info("source ready: GET /readyz now answers 200")
    }
}
