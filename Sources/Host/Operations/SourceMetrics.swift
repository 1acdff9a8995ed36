import StreamgatePluginAPI

/// Per partition the source consumes: records consumed, the position (the
/// next offset to deliver), the log's end as the source last saw it, and
/// the lag between them: how far this node is behind Kafka.
enum SourceMetrics {
    static func write(progress: PartitionProgress, source: any MessageSource, into text: inout PrometheusText) {
        let readings = progress.readings()
        let ends = Dictionary(
            ((source as? any LogEndReportingSource)?.partitionLogEnds() ?? []).map {
                (PartitionID(topic: $0.topic, partition: $0.partition), $0.endOffset)
            }, uniquingKeysWith: { first, _ in first })
        let labels = { (id: PartitionID) in [("topic", id.topic), ("partition", String(id.partition))] }
        text.counter("streamgate_source_records_total", help: "Records the source delivered, per partition (mapped to an endpoint or not)",
                     readings.map { (labels($0.partition), Double($0.reading.consumed)) })
        text.gauge("streamgate_source_position", help: "The offset of the next record the source will deliver, per partition",
                   readings.map { (labels($0.partition), Double($0.reading.position)) })
        let known = readings.compactMap { entry in ends[entry.partition].map { (entry, $0) } }
        text.gauge("streamgate_source_log_end_offset", help: "The partition's log end (high watermark) as the source last saw it",
                   known.map { (labels($0.0.partition), Double($0.1)) })
        text.gauge("streamgate_source_lag", help: "Records in the partition's log not yet delivered by this node (log end minus position)",
                   known.map { (labels($0.0.partition), Double(max(0, $0.1 - $0.0.reading.position))) })
    }
}
