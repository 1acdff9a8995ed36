import Logging
import StreamgatePluginAPI
import Synchronization

/// Where source records enter the fan-out: each record is mapped to its
/// endpoint, framed once, and published to every loop.
final class MessageRouter: MessageSink {
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
        fanout.publish(frame)
        routed.add(1, ordering: .relaxed)
    }

    func endOfBatch() {}

    func sourceIsReady() {
        fanout.setReady(true)
        logger.info("source ready: GET /readyz now answers 200")
    }
}
