/// Where one partition's log ends, as the source last saw it: the offset
/// the next record will get (Kafka's high watermark).
public struct PartitionLogEnd: Sendable, Equatable {
    public let topic: String
    public let partition: Int32
    public let endOffset: Int64

    public init(topic: String, partition: Int32, endOffset: Int64) {
        self.topic = topic
        self.partition = partition
        self.endOffset = endOffset
    }
}

/// A source that knows where its partitions' logs end, so the host can
/// report how far behind them it is (consumer lag, per partition) from the
/// positions it has delivered.
public protocol LogEndReportingSource: MessageSource {
    /// The last known end of each partition consumed; empty before
    /// consumption starts and after it stops. Called from any thread (a
    /// metrics scrape): must not block on the network.
    func partitionLogEnds() -> [PartitionLogEnd]
}
