import CRdKafka
import Foundation
import StreamgatePluginAPI

/// A librdkafka consumer handle and the loop that drains it.
///
/// @unchecked Sendable: the handle is used by one thread at a time — the
/// assigning task, then the poll thread — and destroyed after both finish.
final class KafkaConsumer: @unchecked Sendable {
    let handle: OpaquePointer
    private let logger: any PluginLogger
    static let batchSize = 1024
    private static let pollTimeoutMs: Int32 = 100
    static let metadataTimeoutMs: Int32 = 1000

    init(handle: OpaquePointer, logger: any PluginLogger) {
        self.handle = handle
        self.logger = logger
    }

    /// Positions the consumer, then delivers records into `sink` until `stop`.
    func run(topics: [String], fromEarliest: Bool, sink: any MessageSink, stop: StopFlag, brokers: String) {
        guard let assigned = position(topics: topics, fromEarliest: fromEarliest, stop: stop, brokers: brokers) else {
            return
        }
        Self.announce(assigned, to: sink)
        sink.sourceIsReady()
        pollLoop(sink: sink, epochs: assigned.mapValues(\.epoch), stop: stop)
    }

    /// Assigns and positions every partition (blocking, retried); nil if stopped first.
    func position(topics: [String], fromEarliest: Bool, stop: StopFlag, brokers: String) -> [PartitionKey: AssignedPartition]? {
        guard let assigned = assignAll(topics: topics, fromEarliest: fromEarliest, stop: stop) else { return nil }
        logger.log(.info, "kafka source consuming \(assigned.count) partitions of \(topics.joined(separator: ", ")) from \(brokers)")
        if !KafkaTopicID.isAvailable {
            logger.log(.warning, "this librdkafka cannot describe topic ids (needs >= 2.3): epochs will not tell a deleted and re-created topic apart")
        }
        return assigned
    }

    /// Tells the host where each partition's records begin (before any is delivered).
    static func announce(_ assigned: [PartitionKey: AssignedPartition], to sink: any MessageSink) {
        for (key, partition) in assigned.sorted(by: { ($0.key.topic, $0.key.partition) < ($1.key.topic, $1.key.partition) }) {
            sink.partitionStarted(PartitionStart(
                topic: key.topic, partition: key.partition, epoch: partition.epoch, offset: partition.startOffset))
        }
    }

    /// Assigns every partition of `topics`, positioned at the current end (or
    /// the beginning), retrying every second while a topic is missing or the
    /// broker is unreachable. Returns the epoch of each (topic, partition), or
    /// nil when stopped first. Every librdkafka call here has a short timeout
    /// so a stop request is honoured within about a second.
    private func assignAll(topics: [String], fromEarliest: Bool, stop: StopFlag) -> [PartitionKey: AssignedPartition]? {
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

    private func assignOnce(topics: [String], fromEarliest: Bool) throws(KafkaSourceError) -> [PartitionKey: AssignedPartition] {
        // Metadata first: it makes the request that also caches the cluster id.
        let counts = try topics.map { topic throws(KafkaSourceError) in (topic, try partitionCount(of: topic)) }
        let clusterID = try self.clusterID()
        var topicIDs: [String: String] = [:]
        for topic in topics { topicIDs[topic] = try KafkaTopicID.of(topic, handle: handle, timeoutMs: Self.metadataTimeoutMs) }
        let list = rd_kafka_topic_partition_list_new(16)!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        var assigned: [PartitionKey: AssignedPartition] = [:]
        for (topic, count) in counts {
            for partition in 0..<count {
                var low: Int64 = 0
                var high: Int64 = 0
                let err = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, Self.metadataTimeoutMs)
                guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw KafkaSourceError(message: "offsets of \(topic)[\(partition)]: \(String(cString: rd_kafka_err2str(err)))")
                }
                let entry = rd_kafka_topic_partition_list_add(list, topic, partition)!
                entry.pointee.offset = fromEarliest ? low : high
                assigned[PartitionKey(topic: topic, partition: partition)] = AssignedPartition(
                    epoch: Self.epoch(cluster: clusterID, topic: topic, topicID: topicIDs[topic] ?? "", partition: partition,
                                      partitionCount: count),
                    startOffset: entry.pointee.offset)
            }
        }
        let err = rd_kafka_assign(handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaSourceError(message: "assign: \(String(cString: rd_kafka_err2str(err)))")
        }
        return assigned
    }

    /// The cluster id is part of every epoch, so without it there is no epoch.
    func clusterID() throws(KafkaSourceError) -> String {
        guard let id = rd_kafka_clusterid(handle, Self.metadataTimeoutMs) else {
            throw KafkaSourceError(message: "cannot read the cluster id (is the broker reachable?)")
        }
        defer { rd_kafka_mem_free(handle, id) }
        return String(cString: id)
    }

    func partitionCount(of topic: String) throws(KafkaSourceError) -> Int32 {
        let topicHandle = rd_kafka_topic_new(handle, topic, nil)
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 0, topicHandle, &metadata, Self.metadataTimeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaSourceError(message: "metadata of topic '\(topic)': \(String(cString: rd_kafka_err2str(err)))")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1 else {
            throw KafkaSourceError(message: "topic '\(topic)' not found")
        }
        let info = metadata.pointee.topics[0]
        guard info.err == RD_KAFKA_RESP_ERR_NO_ERROR, info.partition_cnt > 0 else {
            throw KafkaSourceError(message: "topic '\(topic)': \(String(cString: rd_kafka_err2str(info.err)))")
        }
        return info.partition_cnt
    }

    /// An epoch names one offset sequence: it changes with the cluster, the
    /// topic (its id changes when it is re-created) or the partition count,
    /// any of which can make an offset ambiguous.
    static func epoch(cluster: String, topic: String, topicID: String, partition: Int32, partitionCount: Int32) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64
        for byte in "\(cluster)|\(topic)|\(topicID)|\(partition)|\(partitionCount)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    // MARK: Consuming

    private var queue: OpaquePointer?
    private var epochs: [PartitionKey: String] = [:]
    private var topicNames: [OpaquePointer: String] = [:]
    private var batch = [UnsafeMutablePointer<rd_kafka_message_t>?](repeating: nil, count: KafkaConsumer.batchSize)
    private var lastError = ""

    /// Drains the consumer queue in batches until `stop` is set (a thread of its own).
    func pollLoop(sink: any MessageSink, epochs: [PartitionKey: String], stop: StopFlag) {
        guard openQueue(epochs: epochs) else { return }
        while !stop.isSet {
            _ = consumeBatch(timeoutMs: Self.pollTimeoutMs, into: sink)
        }
    }

    /// Opens the consumer queue; the records' epochs come from the assignment.
    func openQueue(epochs: [PartitionKey: String]) -> Bool {
        guard let queue = rd_kafka_queue_get_consumer(handle) else {
            logger.log(.error, "kafka source: no consumer queue")
            return false
        }
        self.queue = queue
        self.epochs = epochs
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
        guard let queue else { return 0 }
        let n = batch.withUnsafeMutableBufferPointer {
            rd_kafka_consume_batch_queue(queue, timeoutMs, $0.baseAddress, Self.batchSize)
        }
        guard n > 0 else { return 0 }
        for i in 0..<n {
            guard let message = batch[i] else { continue }
            defer { rd_kafka_message_destroy(message) }
            let m = message.pointee
            if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
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
                epoch: epochs[PartitionKey(topic: topic, partition: m.partition)] ?? "",
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

    func destroy() {
        if let queue {
            rd_kafka_queue_destroy(queue)
            self.queue = nil
        }
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
    }
}

/// A partition as assigned: its epoch and the first offset it will deliver.
struct AssignedPartition: Sendable {
    let epoch: String
    let startOffset: Int64
}

struct PartitionKey: Hashable, Sendable {
    let topic: String
    let partition: Int32
}
