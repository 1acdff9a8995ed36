import CRdKafka
import Foundation
import StreamgatePluginAPI

/// Tiered replay: a range of one partition read again from Kafka, for a
/// client resuming from a position older than the gateway's cache. Each
/// replay uses a consumer of its own (no group, nothing committed), so it
/// never disturbs the live consumer; the host bounds how many run at once.
extension KafkaSource: ReplayableSource {
    public func replay(_ request: ReplayRequest, timeoutMs: Int, reader: any ReplayReader) throws(ReplayError)
        -> ReplayOutcome
    {
        let consumer: KafkaConsumer
        do {
            consumer = try makeConsumer(extra: ["enable.partition.eof": "true", "fetch.wait.max.ms": "10"])
        } catch {
            throw ReplayError("cannot create a Kafka consumer: \(error)")
        }
        defer { consumer.destroy() }
        return try consumer.replay(request, timeoutMs: timeoutMs, reader: reader)
    }
}

extension KafkaConsumer {
    /// Reads `request`'s partition (blocking, at most `timeoutMs`): checks
    /// the epoch is still the partition's, starts at the first offset the
    /// log still holds, and reads on — through the end of the log, where it
    /// tells the reader it caught up — until the reader stops it.
    func replay(_ request: ReplayRequest, timeoutMs: Int, reader: any ReplayReader) throws(ReplayError)
        -> ReplayOutcome
    {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMs) * 1_000_000
        let low: Int64
        do {
            let identity = try readIdentity(of: [request.topic])
            guard let topic = identity.topics[request.topic], request.partition < topic.partitionCount else {
                return .staleEpoch(current: nil)
            }
            let current = identity.epoch(topic: request.topic, partition: request.partition)
            guard current == request.epoch else { return .staleEpoch(current: current) }
            low = try queryWatermarks(topic: request.topic, partition: request.partition).low
        } catch {
            throw ReplayError(error.message)
        }
        reader.logStarts(at: low)
        let start = max(request.fromOffset, low)
        let list = rd_kafka_topic_partition_list_new(1)!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, request.topic, request.partition)!.pointee.offset = start
        let assigned = rd_kafka_assign(handle, list)
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw ReplayError("assign: \(String(cString: rd_kafka_err2str(assigned)))")
        }
        while DispatchTime.now().uptimeNanoseconds < deadline {
            guard let message = rd_kafka_consumer_poll(handle, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            let m = message.pointee
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                if !reader.caughtUp(nextOffset: m.offset) { return .stopped }
                continue
            }
            guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw ReplayError("reading \(request.topic)[\(request.partition)]: \(String(cString: rd_kafka_err2str(m.err)))")
            }
            let key = m.key.map { UnsafeRawBufferPointer(start: $0, count: m.key_len) }
            let value = UnsafeRawBufferPointer(start: m.payload, count: m.payload == nil ? 0 : m.len)
            let more = reader.read(SourceRecord(
                topic: request.topic, partition: request.partition, offset: m.offset,
                timestampMs: rd_kafka_message_timestamp(message, nil), epoch: request.epoch, key: key, value: value,
                traceParent: KafkaHeaders.traceParent(of: message)))
            if !more { return .stopped }
        }
        throw ReplayError("timed out after \(timeoutMs) ms reading \(request.topic)[\(request.partition)] from offset \(start)")
    }
}
