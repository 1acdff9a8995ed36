import CFanout

// The cache's data: partitions, one endpoint's history, a cached message.

/// One partition of one topic.
struct PartitionID: Hashable, Sendable {
    let topic: String
    let partition: Int32
}

/// One cached message: a reference to the very frame every subscriber got.
struct CachedMessage {
    let offset: Int64
    /// One reference, owned by the cache.
    let frame: OpaquePointer
    /// What the entry costs: the frame plus bookkeeping.
    let bytes: Int
    /// When it must go (monotonic ns): arrival + the endpoint's max age.
    let expiresNs: UInt64
}

/// The recent messages of one endpoint, oldest first, all of one partition
/// and one epoch (offsets ascend).
final class EndpointHistory {
    let endpoint: String
    let partition: PartitionID
    let epoch: String
    let limits: RecoveryConfiguration.CacheLimits
    var messages = RingBuffer<CachedMessage>()
    var bytes = 0
    /// The highest offset evicted (or inherited as not covered): positions
    /// after it are complete in this history.
    var evictedThrough: Int64
    /// Position in the cache's expiry heap, -1 when empty.
    var heapIndex = -1

    init(endpoint: String, partition: PartitionID, epoch: String, limits: RecoveryConfiguration.CacheLimits,
         evictedThrough: Int64)
    {
        self.endpoint = endpoint
        self.partition = partition
        self.epoch = epoch
        self.limits = limits
        self.evictedThrough = evictedThrough
    }
}

/// What the node has consumed of one partition.
struct PartitionState {
    let epoch: String
    /// Where the source started reading: the cache covers nothing before.
    let startOffset: Int64
    /// Positions before this are not covered for endpoints without a history
    /// (their evicted histories were dropped).
    var floor: Int64
    /// The last offset delivered; a record at or below it is a duplicate.
    var lastOffset: Int64
    /// Whether any record has arrived since the start.
    var delivering = false
}
