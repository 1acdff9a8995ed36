import CRdKafka
import Foundation
import StreamgatePluginAPI
import Synchronization

/// A librdkafka consumer handle and the loop that drains it.
///
/// @unchecked Sendable: consumption (`consumeBatch`, on the poll thread or an
/// event loop) and re-positioning (`KafkaLogWatcher`, on a thread of its own)
/// both take `serial`; librdkafka's handle is itself thread-safe. The
/// handle is destroyed after both have finished.
final class KafkaConsumer: @unchecked Sendable {
    let handle: OpaquePointer
    let logger: any PluginLogger
    static let batchSize = 1024
    private static let pollTimeoutMs: Int32 = 100
    static let metadataTimeoutMs: Int32 = 1000
    /// Serializes consumption with re-positioning, so no record is delivered
    /// under an epoch the watcher is replacing.
    private let serial = NSLock()
    /// What is assigned, under `serial`; nil until positioned.
    private var assignment: KafkaAssignment?
    /// Set by consumption when it meets an error only the watcher can
    /// resolve (an offset out of range, an unknown topic).
    let checkRequested = Atomic<Bool>(false)

    init(handle: OpaquePointer, logger: any PluginLogger) {
        self.handle = handle
        self.logger = logger
    }

    /// Positions the consumer, then delivers records into `sink` until `stop`.
    func run(topics: [String], fromEarliest: Bool, sink: any MessageSink, stop: StopFlag, brokers: String) {
        guard let assigned = position(topics: topics, fromEarliest: fromEarliest, stop: stop, brokers: brokers) else {
            return
        }
        Self.announce(assigned.partitions, to: sink)
        sink.sourceIsReady()
        guard openQueue(assigned) else { return }
        let watcher = KafkaLogWatcher(consumer: self, topics: topics, sink: sink)
        watcher.start()
        defer { watcher.stop() }
        while !stop.isSet {
            _ = consumeBatch(timeoutMs: Self.pollTimeoutMs, into: sink)
        }
    }

    /// Assigns and positions every partition (blocking, retried); nil if stopped first.
    func position(topics: [String], fromEarliest: Bool, stop: StopFlag, brokers: String) -> KafkaAssignment? {
        guard let assigned = assignAll(topics: topics, fromEarliest: fromEarliest, stop: stop) else { return nil }
        logger.log(.info, "kafka source consuming \(assigned.partitions.count) partitions of \(topics.joined(separator: ", ")) from \(brokers)")
        if !KafkaTopicID.isAvailable {
            logger.log(.warning, "this librdkafka cannot describe topic ids (needs >= 2.3): epochs will not tell a deleted and re-created topic apart")
        }
        return assigned
    }

    /// Tells the host where each partition's records begin (before any is delivered).
    static func announce(_ partitions: [PartitionKey: AssignedPartition], to sink: any MessageSink) {
        for (key, partition) in partitions.sorted(by: { $0.key < $1.key }) {
            sink.partitionStarted(PartitionStart(
                topic: key.topic, partition: key.partition, epoch: partition.epoch, offset: partition.startOffset))
        }
    }

    /// Assigns every partition of `topics`, positioned at the current end (or
    /// the beginning), retrying every second while a topic is missing or the
    /// broker is unreachable. Returns the assignment, or nil when stopped
    /// first. Every librdkafka call here has a short timeout so a stop
    /// request is honoured within about a second.
    private func assignAll(topics: [String], fromEarliest: Bool, stop: StopFlag) -> KafkaAssignment? {
        var lastComplaint = ""
        while !stop.isSet {
            do {
                return try assignOnce(topics: topics, fromEarliest: fromEarliest)
            } catch {
                if error.message != lastComplaint {
                    logger.log(.warning, "kafka source not ready, retrying every second: \(error.message)")
                    lastComplaint = error.message
                }
                for _ in 0..<10 where !stop.isSet { usleep(100_000) }
            }
        }
        return nil
    }

    private func assignOnce(topics: [String], fromEarliest: Bool) throws(KafkaSourceError) -> KafkaAssignment {
        let identity = try readIdentity(of: topics)
        if let missing = topics.first(where: { identity.topics[$0] == nil }) {
            throw KafkaSourceError(message: "topic '\(missing)' not found")
        }
        var partitions: [PartitionKey: AssignedPartition] = [:]
        for topic in topics {
            for partition in 0..<identity.topics[topic]!.partitionCount {
                let (low, high) = try queryWatermarks(topic: topic, partition: partition)
                partitions[PartitionKey(topic: topic, partition: partition)] = AssignedPartition(
                    epoch: identity.epoch(topic: topic, partition: partition), startOffset: fromEarliest ? low : high)
            }
        }
        let list = Self.partitionList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_assign(handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaSourceError(message: "assign: \(String(cString: rd_kafka_err2str(err)))")
        }
        return KafkaAssignment(identity: identity, partitions: partitions)
    }

    /// The partition's first and next offsets as the broker lists them now (blocking, a second at most).
    func queryWatermarks(topic: String, partition: Int32) throws(KafkaSourceError) -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, Self.metadataTimeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaSourceError(message: "offsets of \(topic)[\(partition)]: \(String(cString: rd_kafka_err2str(err)))")
        }
        return (low, high)
    }

    /// A new librdkafka partition list (owned by the caller), each entry at its start offset.
    static func partitionList(_ partitions: [PartitionKey: AssignedPartition]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(max(partitions.count, 1)))!
        for (key, partition) in partitions.sorted(by: { $0.key < $1.key }) {
            rd_kafka_topic_partition_list_add(list, key.topic, key.partition)!.pointee.offset = partition.startOffset
        }
        return list
    }

    /// A new librdkafka partition list (owned by the caller) without offsets.
    static func partitionList(_ keys: some Collection<PartitionKey>) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(max(keys.count, 1)))!
        for key in keys.sorted() {
            rd_kafka_topic_partition_list_add(list, key.topic, key.partition)
        }
        return list
    }

    // MARK: Consuming

    private var queue: OpaquePointer?
    private var topicNames: [OpaquePointer: String] = [:]
    private var batch = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: KafkaConsumer.batchSize)
    private var lastError = ""
    /// Partitions consumption reported out of range, for the watcher (under `serial`).
    private var outOfRange: Set<PartitionKey> = []

    /// Opens the consumer queue; the records' epochs come from `assigned`.
    func openQueue(_ assigned: KafkaAssignment) -> Bool {
        guard let queue = rd_kafka_queue_get_consumer(handle) else {
            logger.log(.error, "kafka source: no consumer queue")
            return false
        }
        serial.withLock {
            self.queue = queue
            assignment = assigned
        }
        return true
    }

    /// Asks librdkafka to write to `eventFD` whenever the queue turns non-empty.
    func signalQueue(on eventFD: Int32) {
        guard let queue else { return }
        var one: UInt64 = 1
        withUnsafeBytes(of: &one) { rd_kafka_queue_io_event_enable(queue, eventFD, $0.baseAddress, $0.count) }
    }

    /// Delivers one batch (waiting at most `timeoutMs`); returns how many
    /// messages librdkafka handed over (records and errors).
    @discardableResult
    func consumeBatch(timeoutMs: Int32, into sink: any MessageSink) -> Int {
        serial.withLock { consumeLocked(timeoutMs: timeoutMs, into: sink) }
    }

    private func consumeLocked(timeoutMs: Int32, into sink: any MessageSink) -> Int {
        guard let queue, let assignment else { return 0 }
        let n = batch.withUnsafeMutableBufferPointer {
            rd_kafka_consume_batch_queue(queue, timeoutMs, $0.baseAddress, Self.batchSize)
        }
        guard n > 0 else { return 0 }
        for i in 0..<n {
            guard let message = batch[i] else { continue }
            defer { rd_kafka_message_destroy(message) }
            let m = message.pointee
            if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if Self.needsWatcher(m.err) {
                    if m.err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET || m.err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE,
                       let rkt = m.rkt
                    {
                        outOfRange.insert(PartitionKey(topic: String(cString: rd_kafka_topic_name(rkt)), partition: m.partition))
                    }
                    checkRequested.store(true, ordering: .releasing)
                }
                let text = String(cString: rd_kafka_err2str(m.err))
                if text != lastError {
                    logger.log(.warning, "kafka source: \(text)")
                    lastError = text
                }
                continue
            }
            let topic: String
            if let rkt = m.rkt, let known = topicNames[rkt] {
                topic = known
            } else if let rkt = m.rkt {
                topic = String(cString: rd_kafka_topic_name(rkt))
                topicNames[rkt] = topic
            } else {
                continue
            }
            let key = m.key.map { UnsafeRawBufferPointer(start: $0, count: m.key_len) }
            let value = UnsafeRawBufferPointer(start: m.payload, count: m.payload == nil ? 0 : m.len)
            sink.deliver(SourceRecord(
                topic: topic, partition: m.partition, offset: m.offset,
                timestampMs: rd_kafka_message_timestamp(message, nil),
                epoch: assignment.partitions[PartitionKey(topic: topic, partition: m.partition)]?.epoch ?? "",
                key: key, value: value, traceParent: KafkaHeaders.traceParent(of: message)))
        }
        sink.endOfBatch()
        return n
    }

    /// The partition's high watermark as of the last fetch response
    /// (`rd_kafka_get_watermark_offsets`: local, non-blocking); nil before any.
    func cachedLogEnd(topic: String, partition: Int32) -> Int64? {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high)
        return err == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    // MARK: Re-positioning (for KafkaLogWatcher)

    /// Errors of consumption that mean the log may not be the one the
    /// partition's epoch names: the watcher looks at once.
    static func needsWatcher(_ err: rd_kafka_resp_err_t) -> Bool {
        err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET || err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE
            || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION
    }

    /// The partitions consumption reported out of range since the last call.
    func takeOutOfRange() -> Set<PartitionKey> {
        serial.withLock {
            defer { outOfRange = [] }
            return outOfRange
        }
    }

    /// Gives back partitions `takeOutOfRange` returned but the watcher could not settle.
    func restoreOutOfRange(_ keys: some Sequence<PartitionKey>) {
        serial.withLock { outOfRange.formUnion(keys) }
    }

    /// A copy of the assignment; nil before the consumer is positioned.
    func currentAssignment() -> KafkaAssignment? { serial.withLock { assignment } }

    /// Where consumption of each partition stands (the next offset to
    /// deliver; nil before the first record) and the log end librdkafka last
    /// fetched (nil before the first fetch). Read together under `serial`,
    /// the position first: a log end only grows, so in a log that did not go
    /// back the position is never beyond it.
    func progress(of keys: [PartitionKey]) -> [PartitionKey: PartitionProgressReading] {
        serial.withLock {
            let list = Self.partitionList(keys)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            guard rd_kafka_position(handle, list) == RD_KAFKA_RESP_ERR_NO_ERROR else { return [:] }
            var readings: [PartitionKey: PartitionProgressReading] = [:]
            for i in 0..<Int(list.pointee.cnt) {
                let entry = list.pointee.elems[i]
                let key = PartitionKey(topic: String(cString: entry.topic), partition: entry.partition)
                readings[key] = PartitionProgressReading(
                    position: entry.offset >= 0 ? entry.offset : nil,
                    logEnd: cachedLogEnd(topic: key.topic, partition: key.partition))
            }
            return readings
        }
    }

    /// Stops fetching `keys` until `resume` or `restart`; records already
    /// fetched belong to the log as it was and may still be delivered.
    func pause(_ keys: [PartitionKey]) { setPaused(keys, true) }

    func resume(_ keys: [PartitionKey]) { setPaused(keys, false) }

    private func setPaused(_ keys: [PartitionKey], _ paused: Bool) {
        guard !keys.isEmpty else { return }
        serial.withLock {
            let list = Self.partitionList(keys)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            if paused {
                _ = rd_kafka_pause_partitions(handle, list)
                assignment?.paused.formUnion(keys)
            } else {
                _ = rd_kafka_resume_partitions(handle, list)
                assignment?.paused.subtract(keys)
            }
        }
    }

    /// Replaces `dropping` with `starts` (each at its new epoch and start
    /// offset) and announces the starts to `sink`, all under `serial`: the
    /// records librdkafka fetched for a dropped partition are discarded with
    /// it, so nothing of the new log goes out under the old epoch. Returns
    /// what went wrong, nil on success; after a failure the dropped
    /// partitions are no longer assigned and a later check starts them.
    func restart(_ starts: [PartitionKey: AssignedPartition], dropping: [PartitionKey], identity: KafkaLogIdentity,
                 sink: any MessageSink) -> String?
    {
        serial.withLock {
            guard var current = assignment else { return "not positioned" }
            defer { assignment = current }
            if !dropping.isEmpty {
                let list = Self.partitionList(dropping)
                defer { rd_kafka_topic_partition_list_destroy(list) }
                if let problem = Self.take(rd_kafka_incremental_unassign(handle, list)) { return "unassign: \(problem)" }
                for key in dropping {
                    current.partitions[key] = nil
                    current.paused.remove(key)
                }
            }
            let list = Self.partitionList(starts)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            if let problem = Self.take(rd_kafka_incremental_assign(handle, list)) { return "assign: \(problem)" }
            // A partition's pause outlives its unassignment in librdkafka.
            _ = rd_kafka_resume_partitions(handle, list)
            for (key, partition) in starts {
                current.partitions[key] = partition
                current.paused.remove(key)
            }
            current.identity = identity
            Self.announce(starts, to: sink)
            return nil
        }
    }

    /// The text of a librdkafka error object, which it destroys; nil for none.
    private static func take(_ error: OpaquePointer?) -> String? {
        guard let error else { return nil }
        defer { rd_kafka_error_destroy(error) }
        return String(cString: rd_kafka_error_string(error))
    }

    func destroy() {
        if let queue {
            rd_kafka_queue_destroy(queue)
            self.queue = nil
        }
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
    }
}

/// What a consumer reads: the identity its epochs derive from, and per
/// partition its epoch and where it (re)started.
struct KafkaAssignment: Sendable {
    var identity: KafkaLogIdentity
    var partitions: [PartitionKey: AssignedPartition]
    /// Partitions held back until the watcher has verified their log.
    var paused: Set<PartitionKey> = []
}

/// A partition as assigned: its epoch and the first offset it will deliver.
struct AssignedPartition: Sendable, Equatable {
    let epoch: String
    let startOffset: Int64
}

/// One partition's consumption and log end, as `KafkaConsumer.progress` read them.
struct PartitionProgressReading: Sendable {
    let position: Int64?
    let logEnd: Int64?
}

/// Ordered by topic, then partition: the order partitions are announced and listed in.
struct PartitionKey: Hashable, Comparable, Sendable {
    let topic: String
    let partition: Int32

    static func < (a: PartitionKey, b: PartitionKey) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
}
