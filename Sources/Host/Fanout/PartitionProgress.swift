import StreamgatePluginAPI
import Synchronization

/// How far the source got in each partition: records consumed and the next
/// offset to deliver. Noted by the router for every record (mapped to an
/// endpoint or not), read by a scrape, which subtracts the position from the
/// source's log end to report consumer lag.
final class PartitionProgress: Sendable {
    struct Reading: Sendable, Equatable {
        var consumed: UInt64 = 0
        /// The offset of the next record the source will deliver.
        var position: Int64
    }

    /// Sources deliver from one thread at a time; the lock is uncontended
    /// but for scrapes.
    private let partitions = Mutex<[PartitionID: Reading]>([:])

    /// Consumption of the partition (re)starts at `start.offset`.
    func started(_ start: PartitionStart) {
        let id = PartitionID(topic: start.topic, partition: start.partition)
        partitions.withLock { $0[id, default: Reading(position: start.offset)].position = start.offset }
    }

    func consumed(topic: String, partition: Int32, offset: Int64) {
        partitions.withLock {
            let id = PartitionID(topic: topic, partition: partition)
            $0[id, default: Reading(position: offset)].consumed += 1
            $0[id]!.position = offset + 1
        }
    }

    func readings() -> [(partition: PartitionID, reading: Reading)] {
        partitions.withLock { $0.map { ($0.key, $0.value) } }
            .sorted { ($0.partition.topic, $0.partition.partition) < ($1.partition.topic, $1.partition.partition) }
    }
}
