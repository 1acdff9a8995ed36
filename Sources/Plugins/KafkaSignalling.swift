import CRdKafka
import Glibc
import StreamgatePluginAPI
import Synchronization

/// The Kafka source consumed by an event loop: librdkafka writes to an
/// eventfd when its queue turns non-empty, the loop drains the queue on its
/// own thread. The lock makes `finish` wait for a drain in progress.
final class KafkaSignalling: Sendable {
    /// @unchecked Sendable: the consumer is used by one thread at a time
    /// (under this class's lock); the fd is a plain number.
    private struct Active: @unchecked Sendable {
        let consumer: KafkaConsumer
        let watcher: KafkaLogWatcher
        let eventFD: Int32
    }

    private let active = Mutex<Active?>(nil)
    /// Batches per drain before yielding to the loop's other work.
    private static let maxBatchesPerDrain = 8

    /// Positions `consumer` (blocking, retried until `stop`) and starts signalling.
    func start(_ consumer: KafkaConsumer, topics: [String], fromEarliest: Bool, brokers: String, stop: StopFlag,
               sink: any MessageSink) -> Int32?
    {
        guard let assigned = consumer.position(topics: topics, fromEarliest: fromEarliest, stop: stop, brokers: brokers),
              consumer.openQueue(assigned)
        else { return nil }
        // Before the loop can drain a record.
        KafkaConsumer.announce(assigned.partitions, to: sink)
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { return nil }
        consumer.signalQueue(on: fd)
        let watcher = KafkaLogWatcher(consumer: consumer, topics: topics, sink: sink)
        watcher.start()
        active.withLock { $0 = Active(consumer: consumer, watcher: watcher, eventFD: fd) }
        return fd
    }

    func drain(into sink: any MessageSink) {
        active.withLock { active in
            guard let active else { return }
            for _ in 0..<Self.maxBatchesPerDrain {
                if active.consumer.consumeBatch(timeoutMs: 0, into: sink) < KafkaConsumer.batchSize { return }
            }
            // More is waiting, but librdkafka signals only when its queue turns
            // non-empty: signal ourselves so the loop comes back next turn.
            var one: UInt64 = 1
            _ = write(active.eventFD, &one, 8)
        }
    }

    /// The high watermarks librdkafka last fetched (no network call), under
    /// the lock that `finish` takes before it destroys the consumer, so a
    /// scrape never reads a freed handle.
    func logEnds() -> [PartitionLogEnd] {
        active.withLock { active in
            guard let active, let assignment = active.consumer.currentAssignment() else { return [] }
            let partitions = assignment.partitions.keys.sorted()
            return partitions.compactMap { key in
                active.consumer.cachedLogEnd(topic: key.topic, partition: key.partition)
                    .map { PartitionLogEnd(topic: key.topic, partition: key.partition, endOffset: $0) }
            }
        }
    }

    func finish() {
        let stopped = active.withLock { active -> Active? in
            defer { active = nil }
            return active
        }
        stopped?.watcher.stop()
        stopped?.consumer.destroy()
    }
}
