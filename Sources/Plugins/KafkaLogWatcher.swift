import CRdKafka
import Foundation
import StreamgatePluginAPI

/// Keeps the consumer's epochs true to the logs it reads.
///
/// An epoch names one offset sequence (`KafkaLogIdentity`). librdkafka does
/// not notice when that sequence is replaced under it: a broker that comes
/// back with an empty log, or a topic deleted and re-created, answers the
/// old position with nothing until the new log grows that far, then with the
/// new log's records (Tansu does not even report the offset out of range).
/// Delivered under the old epoch they would pass for the old log's — taken
/// for duplicates, mixed into resumes — without a word to anyone.
///
/// So this thread, beside consumption:
/// - holds every partition back (pause) as soon as librdkafka reports a lost
///   broker connection, and lets it go only once it has read the logs'
///   identity again, so a reconnect fetches nothing unverified;
/// - reads the identity every second anyway (a broker can come back between
///   two reconnect attempts), and at once when consumption meets an offset
///   out of range or an unknown topic;
/// - restarts a topic whose identity changed from its new log's first offset
///   under new epochs, which every node derives alike; the host drops what it
///   cached of the old log, and resumes from old positions are told
///   `stale_epoch`;
/// - restarts a partition whose log went back under the same identity
///   (consumption stuck beyond the log's end) from the log's first offset,
///   under an epoch of this node's own: no other node can agree on one, and
///   `stale_epoch` on a resume elsewhere is better than other records;
/// - restarts, under its epoch, a partition whose unread records the broker
///   deleted (retention) from the first offset the log still holds.
final class KafkaLogWatcher: @unchecked Sendable {
    private let consumer: KafkaConsumer
    private let topics: [String]
    private let sink: any MessageSink
    private let stopFlag = StopFlag()
    private let finished = DispatchSemaphore(value: 0)
    /// How often the identity is read while nothing looks wrong: the longest
    /// a replaced log can go unnoticed when no error announced it.
    static let checkIntervalMs: UInt64 = 1000
    /// How often while partitions are held back or a rewind is being confirmed.
    static let urgentCheckIntervalMs: UInt64 = 200

    // The watcher thread's own state.
    private var lastComplaint = ""
    /// Partitions seen beyond their log's end at the last check, and where:
    /// a rewind is confirmed when consumption is still stuck there.
    private var beyondEnd: [PartitionKey: Int64] = [:]

    init(consumer: KafkaConsumer, topics: [String], sink: any MessageSink) {
        self.consumer = consumer
        self.topics = topics
        self.sink = sink
    }

    func start() {
        let thread = Thread { [self] in
            watch()
            finished.signal()
        }
        thread.name = "kafka-log-watcher"
        thread.start()
    }

    /// Returns once the thread has finished (within about a second, or the
    /// broker requests of a check in progress).
    func stop() {
        stopFlag.set()
        finished.wait()
    }

    private func watch() {
        guard let mainQueue = rd_kafka_queue_get_main(consumer.handle) else { return }
        defer { rd_kafka_queue_destroy(mainQueue) }
        var nextCheck = Self.now() + Self.checkIntervalMs * 1_000_000
        while !stopFlag.isSet {
            if let event = rd_kafka_queue_poll(mainQueue, 100) {
                handle(event)
                rd_kafka_event_destroy(event)
            }
            let requested = consumer.checkRequested.exchange(false, ordering: .acquiringAndReleasing)
            if requested || Self.now() >= nextCheck {
                let urgent = check()
                nextCheck = Self.now() + (urgent ? Self.urgentCheckIntervalMs : Self.checkIntervalMs) * 1_000_000
            }
        }
    }

    /// librdkafka's error events (the main queue; `KafkaSource` enables them).
    private func handle(_ event: OpaquePointer) {
        guard rd_kafka_event_type(event) == RD_KAFKA_EVENT_ERROR else { return }
        let err = rd_kafka_event_error(event)
        let text = String(cString: rd_kafka_event_error_string(event))
        if rd_kafka_event_error_is_fatal(event) != 0 {
            consumer.logger.log(.error, "kafka source: fatal error: \(text)")
            return
        }
        guard err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN else {
            complain("kafka source: \(text)")
            return
        }
        guard let assignment = consumer.currentAssignment() else { return }
        let running = assignment.partitions.keys.filter { !assignment.paused.contains($0) }
        guard !running.isEmpty else { return }
        consumer.pause(running)
        consumer.logger.log(.warning, "kafka source lost a broker connection (\(text)): \(running.count) partitions are held until their logs are verified unchanged")
        consumer.checkRequested.store(true, ordering: .releasing)
    }

    /// Reads the logs' identity and acts on what changed; returns whether to
    /// look again soon (partitions held back, a rewind to confirm).
    private func check() -> Bool {
        guard let current = consumer.currentAssignment() else { return false }
        let observed: KafkaLogIdentity
        do {
            observed = try consumer.readIdentity(of: topics)
        } catch {
            complain("kafka source cannot verify its logs (\(error.message)): \(current.paused.count) partitions held")
            return !current.paused.isEmpty
        }
        var plan = Plan(identity: current.identity)
        for topic in topics {
            let keys = current.partitions.keys.filter { $0.topic == topic }
            guard let now = observed.topics[topic] else {
                if keys.contains(where: { !current.paused.contains($0) }) {
                    consumer.logger.log(.warning, "kafka source: topic '\(topic)' is gone; its partitions are held until it is back")
                }
                plan.hold += keys
                continue
            }
            if observed.clusterID == current.identity.clusterID, now == current.identity.topics[topic] {
                plan.verified += keys
                // Partitions a failed restart left unassigned, or never assigned.
                for partition in 0..<now.partitionCount where current.partitions[PartitionKey(topic: topic, partition: partition)] == nil {
                    guard plan.start(topic, partition, epoch: observed.epoch(topic: topic, partition: partition), consumer) else {
                        return true
                    }
                }
                continue
            }
            consumer.logger.log(.warning, "kafka source: topic '\(topic)' is a new log (\(Self.describe(from: current.identity, to: observed, topic: topic))): its \(now.partitionCount) partitions start again from their first offsets under new epochs")
            plan.dropping += keys
            for partition in 0..<now.partitionCount {
                guard plan.start(topic, partition, epoch: observed.epoch(topic: topic, partition: partition), consumer) else {
                    return true
                }
            }
            plan.identity.clusterID = observed.clusterID
            plan.identity.topics[topic] = now
        }
        var urgent = checkRewinds(plan: &plan, current: current)
        if !checkOutOfRange(plan: &plan, current: current) { urgent = true }

        consumer.pause(plan.hold.filter { !current.paused.contains($0) })
        if !plan.starts.isEmpty || !plan.dropping.isEmpty {
            if let problem = consumer.restart(plan.starts, dropping: plan.dropping, identity: plan.identity, sink: sink) {
                consumer.logger.log(.error, "kafka source cannot restart its partitions (\(problem)); trying again")
                return true
            }
        }
        let release = plan.verified.filter { current.paused.contains($0) && plan.starts[$0] == nil }
        if !release.isEmpty {
            consumer.resume(release)
            consumer.logger.log(.info, "kafka source: \(release.count) held partitions verified unchanged, consuming again")
            lastComplaint = ""
        }
        return urgent || !plan.hold.isEmpty
    }

    /// Partitions whose consumption stands beyond their log's end: the log
    /// went back under the same identity. Confirmed when consumption is still
    /// stuck at the same place at the next (soon) check, so a log end read a
    /// moment stale cannot restart a healthy partition. Returns whether a
    /// suspect waits for confirmation.
    private func checkRewinds(plan: inout Plan, current: KafkaAssignment) -> Bool {
        let candidates = plan.verified.filter { !current.paused.contains($0) && plan.starts[$0] == nil }
        let readings = consumer.progress(of: candidates)
        var suspects: [PartitionKey: Int64] = [:]
        for key in candidates {
            guard let reading = readings[key], let position = reading.position, let end = reading.logEnd, position > end
            else { continue }
            guard beyondEnd[key] == position else {
                suspects[key] = position
                continue
            }
            plan.dropping.append(key)
            if !plan.start(key.topic, key.partition, epoch: rewound(key, to: end, from: position, current), consumer) {
                return true
            }
        }
        beyondEnd = suspects
        return !suspects.isEmpty
    }

    /// Partitions consumption reported out of range (with
    /// `auto.offset.reset=error`, librdkafka stops fetching them): the
    /// broker deleted records not yet read (retention), or the log went
    /// back. Returns false when the broker did not answer (try again soon).
    private func checkOutOfRange(plan: inout Plan, current: KafkaAssignment) -> Bool {
        let keys = consumer.takeOutOfRange().filter { current.partitions[$0] != nil && plan.starts[$0] == nil }
        guard !keys.isEmpty else { return true }
        let readings = consumer.progress(of: Array(keys))
        for key in keys {
            let assigned = current.partitions[key]!
            guard let (low, high) = try? consumer.queryWatermarks(topic: key.topic, partition: key.partition) else {
                consumer.restoreOutOfRange(keys)
                return false
            }
            let position = readings[key]?.position ?? assigned.startOffset
            plan.dropping.append(key)
            if position < low {
                consumer.logger.log(.warning, "kafka source: offsets \(position)..\(low - 1) of \(key.topic)[\(key.partition)] were deleted (retention) before the gateway read them; it goes on from \(low)")
                plan.starts[key] = AssignedPartition(epoch: assigned.epoch, startOffset: low)
            } else if position > high {
                plan.starts[key] = AssignedPartition(epoch: rewound(key, to: high, from: position, current), startOffset: low)
            } else {
                plan.starts[key] = AssignedPartition(epoch: assigned.epoch, startOffset: position)
            }
        }
        return true
    }

    /// An epoch of this node's own for a log that went back to `end` under
    /// the same identity; says so in the log.
    private func rewound(_ key: PartitionKey, to end: Int64, from position: Int64, _ current: KafkaAssignment) -> String {
        consumer.logger.log(.error, "kafka source: the log of \(key.topic)[\(key.partition)] went back from offset \(position) to \(end) under the same topic id: the broker lost records. It starts again from its first offset under an epoch of this node's own; clients resuming from before are told stale_epoch")
        let topic = current.identity.topics[key.topic]
        return KafkaConsumer.epoch(
            cluster: current.identity.clusterID, topic: key.topic, topicID: topic?.id ?? "", partition: key.partition,
            partitionCount: topic?.partitionCount ?? 0, rewound: UUID().uuidString)
    }

    /// What one check decided.
    private struct Plan {
        var identity: KafkaLogIdentity
        var starts: [PartitionKey: AssignedPartition] = [:]
        var dropping: [PartitionKey] = []
        var hold: [PartitionKey] = []
        var verified: [PartitionKey] = []

        /// Starts a partition from its log's first offset; false when the
        /// broker did not say where that is.
        mutating func start(_ topic: String, _ partition: Int32, epoch: String, _ consumer: KafkaConsumer) -> Bool {
            guard let (low, _) = try? consumer.queryWatermarks(topic: topic, partition: partition) else { return false }
            starts[PartitionKey(topic: topic, partition: partition)] = AssignedPartition(epoch: epoch, startOffset: low)
            return true
        }
    }

    private static func describe(from old: KafkaLogIdentity, to new: KafkaLogIdentity, topic: String) -> String {
        if old.clusterID != new.clusterID { return "cluster \(old.clusterID) is now \(new.clusterID)" }
        let was = old.topics[topic], now = new.topics[topic]
        if was?.id != now?.id { return "topic id \(was?.id ?? "none") is now \(now?.id ?? "none")" }
        return "\(was?.partitionCount ?? 0) partitions are now \(now?.partitionCount ?? 0)"
    }

    private func complain(_ text: String) {
        guard text != lastComplaint else { return }
        consumer.logger.log(.warning, text)
        lastComplaint = text
    }

    private static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
