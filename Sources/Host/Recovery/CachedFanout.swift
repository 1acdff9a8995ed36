import CFanout
import Foundation
import StreamgatePluginAPI
import Synchronization

/// The join between the cache and live traffic. Every batch is cached and
/// handed to the loops under one lock, and every subscribe reads the cache
/// and queues its replay and its subscription under the same lock: a loop
/// runs its commands in order, so each message reaches a resuming client
/// exactly once — in the replay if it was cached before the subscription,
/// live if after (docs/recovery.md).
///
/// The cache lock is the outer lock of the host: while it is held, the
/// `SubscriptionLedger` (the sessions lock) is asked to confirm a
/// subscription, and the loops' queues are posted to; nothing else.
final class CachedFanout: Sendable {
    /// A subscription the cache cannot complete yet (see `Outcome.waiting`).
    private struct Waiter {
        let conn: cf_conn_id
        let endpoint: String
        let partition: PartitionID
        let position: ResumePosition
        let deadlineNs: UInt64
        let subscription: UInt64
    }

    private struct State {
        let cache: EndpointCache
        var waiters: [Waiter] = []
        var batch: [OpaquePointer?] = []
    }

    private let state: Mutex<State>
    private let fanout: any FanoutPort
    private let ledger: any SubscriptionLedger
    private let configuration: RecoveryConfiguration
    private let maxReplayBytes: Int
    /// How resumes ended (metrics).
    let resumes = ResumeCounters()

    init(configuration: RecoveryConfiguration, fanout: any FanoutPort, ledger: any SubscriptionLedger,
         maxOutputBytes: Int)
    {
        self.configuration = configuration
        self.fanout = fanout
        self.ledger = ledger
        // Half the slow-consumer cap: live messages still fit behind a replay.
        maxReplayBytes = maxOutputBytes / 2
        state = Mutex(State(cache: EndpointCache(configuration: configuration)))
    }

    static func nowNs() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    // MARK: Sources

    /// A partition (re)starts. When its log was replaced (a new epoch), the
    /// live subscribers of every endpoint with messages of the old log cached
    /// get a `stale_epoch` notice before the new log's first message: their
    /// positions no longer resume, and what the old log held beyond them is
    /// gone with it.
    func partitionStarted(_ start: PartitionStart) {
        state.withLock { s in
            let replaced = s.cache.partitionStarted(
                PartitionID(topic: start.topic, partition: start.partition), epoch: start.epoch, offset: start.offset)
            guard !replaced.isEmpty else { return }
            let notices: [OpaquePointer?] = replaced.compactMap { old in
                DeliveryFrame.text(ClientProtocol.logReplaced(endpoint: old.endpoint, epoch: old.epoch, current: start.epoch),
                                   endpoint: old.endpoint)
            }
            // The references are the fan-out's from here on.
            notices.withUnsafeBufferPointer { fanout.publish(batch: $0) }
        }
    }

    /// Caches and fans out one batch; duplicates (offsets already delivered)
    /// are dropped. Consumes the records' frame references. Returns the
    /// waiting subscriptions the batch let go on.
    func publish(_ records: [RoutedRecord]) -> [ReadyWaiter] {
        state.withLock { s in
            let now = Self.nowNs()
            s.batch.removeAll(keepingCapacity: true)
            for r in records {
                if s.cache.append(
                    endpoint: r.endpoint, partition: r.partition, epoch: r.epoch, offset: r.offset, frame: r.frame,
                    nowNs: now)
                {
                    s.batch.append(r.frame)
                } else {
                    cf_frame_release(r.frame)
                }
            }
            if !s.batch.isEmpty {
                s.batch.withUnsafeBufferPointer { fanout.publish(batch: $0) }
            }
            s.cache.evictExpired(nowNs: now, budget: 2 * records.count + 16)
            return s.waiters.isEmpty ? [] : resolveWaiters(&s, nowNs: now)
        }
    }

    /// Periodic upkeep: expired entries and expired waiters. Returns the
    /// waiting subscriptions that can go on or failed.
    func tick() -> [ReadyWaiter] {
        state.withLock { s in
            let now = Self.nowNs()
            s.cache.evictExpired(nowNs: now, budget: 65_536)
            return s.waiters.isEmpty ? [] : resolveWaiters(&s, nowNs: now)
        }
    }

    // MARK: Subscribing

    /// Subscribes `conn` to `endpoint` (of `topic`), replaying from the cache
    /// what the options ask for. The `subscribed` acknowledgement must
    /// already be queued.
    func subscribe(_ conn: cf_conn_id, endpoint: String, topic: String, options: SubscribeOptions, subscription: UInt64)
        -> Outcome
    {
        state.withLock { s in
            plan(&s, conn: conn, endpoint: endpoint, topic: topic, options: options, subscription: subscription,
                 nowNs: Self.nowNs())
        }
    }

    private func plan(_ s: inout State, conn: cf_conn_id, endpoint: String, topic: String, options: SubscribeOptions,
                      subscription: UInt64, nowNs: UInt64) -> Outcome
    {
        guard let position = options.resume else {
            return queue(conn, endpoint, subscription, frames: snapshot(s, endpoint, options), notices: [],
                         marker: livePosition(s, endpoint))
        }
        guard let partition = s.cache.partition(ofEpoch: position.epoch), partition.topic == topic else {
            // The position belongs to an offset sequence this node does not
            // serve for this topic: say so, then go on live.
            let notice = ClientProtocol.staleEpoch(endpoint: endpoint, epoch: position.epoch,
                                                   current: s.cache.epoch(of: endpoint))
            resumes.count(.cache, .staleEpoch)
            return queue(conn, endpoint, subscription, frames: snapshot(s, endpoint, options), notices: [notice],
                         marker: livePosition(s, endpoint))
        }
        guard let partitionState = s.cache.state(of: partition), position.seq <= partitionState.lastOffset else {
            // The client saw more than this node has consumed (it came from a
            // node further ahead): wait for this node to catch up.
            s.waiters.append(Waiter(
                conn: conn, endpoint: endpoint, partition: partition, position: position,
                deadlineNs: nowNs + UInt64(configuration.resumeWaitMs) * 1_000_000, subscription: subscription))
            return .waiting
        }
        let covered = s.cache.coveredFrom(endpoint: endpoint, partition: partition) ?? partitionState.startOffset
        if position.seq + 1 < covered {
            return .fetch(ReplayRequest(
                topic: partition.topic, partition: partition.partition, epoch: position.epoch,
                fromOffset: position.seq + 1), coveredFrom: covered)
        }
        let cached = s.cache.messages(of: endpoint, in: partition, after: position.seq)
        guard fits(cached.count, cached.reduce(0) { $0 + $1.bytes }) else {
            resumes.count(.cache, .tooLarge)
            return refuseTooLarge(conn, endpoint, subscription, count: cached.count)
        }
        resumes.count(.cache, .replayed)
        return queue(conn, endpoint, subscription, frames: cached.map { cf_frame_retain($0.frame) }, notices: [],
                     marker: ClientProtocol.replayed(endpoint: endpoint, count: cached.count, source: "cache"))
    }

    /// Tries to finish a subscription whose older part is being read from
    /// the source: `fetched` holds the endpoint's records read so far (taken
    /// only when finished; until then they stay the reader's), everything
    /// before `position` of the partition has been read, `lost` names the
    /// positions the source no longer had. Finishes when the cache is
    /// complete from `position` on: the notices, the fetched records, the
    /// cached messages after them and the subscription are queued in one go,
    /// under the lock, so the read joins live traffic with no gap and no
    /// duplicate. `beforeAnswer` runs (under the lock) just before the
    /// client's answer is queued, when it finishes.
    func completeFetch(_ conn: cf_conn_id, endpoint: String, subscription: UInt64, request: ReplayRequest,
                       position: Int64, fetched: OwnedFrames, lost: ClosedRange<Int64>?,
                       beforeAnswer: () -> Void = {}) -> FetchProgress
    {
        state.withLock { s in
            let partition = PartitionID(topic: request.topic, partition: request.partition)
            guard let partitionState = s.cache.state(of: partition), partitionState.epoch == request.epoch,
                  let covered = s.cache.coveredFrom(endpoint: endpoint, partition: partition)
            else {
                fetched.take().forEach { cf_frame_release($0) }
                beforeAnswer()
                resumes.count(.kafka, .staleEpoch)
                let notice = ClientProtocol.staleEpoch(endpoint: endpoint, epoch: request.epoch,
                                                       current: s.cache.epoch(of: endpoint))
                return .finished(queue(conn, endpoint, subscription, frames: [], notices: [notice], marker: nil))
            }
            guard covered <= position else { return .readOn(until: covered) }
            var notices: [String] = []
            if let lost {
                notices.append(ClientProtocol.gap(endpoint: endpoint, epoch: request.epoch, fromSeq: lost.lowerBound,
                                                  toSeq: lost.upperBound, reason: "no longer in the source's log (retention)"))
            }
            let cached = s.cache.messages(of: endpoint, in: partition, after: position - 1)
            let count = fetched.count + cached.count
            guard fits(count, fetched.bytes + cached.reduce(0) { $0 + $1.bytes }) else {
                fetched.take().forEach { cf_frame_release($0) }
                beforeAnswer()
                resumes.count(.kafka, .tooLarge)
                return .finished(refuseTooLarge(conn, endpoint, subscription, count: count))
            }
            beforeAnswer()
            resumes.count(.kafka, lost == nil ? .replayed : .gap)
            return .finished(queue(
                conn, endpoint, subscription, frames: fetched.take() + cached.map { cf_frame_retain($0.frame) },
                notices: notices, marker: ClientProtocol.replayed(endpoint: endpoint, count: count, source: "kafka")))
        }
    }

    /// The source says the position's epoch is gone: a notice, then live.
    func completeStale(_ conn: cf_conn_id, endpoint: String, subscription: UInt64, epoch: String, current: String?)
        -> Outcome
    {
        state.withLock { _ in
            resumes.count(.kafka, .staleEpoch)
            return queue(conn, endpoint, subscription, frames: [],
                  notices: [ClientProtocol.staleEpoch(endpoint: endpoint, epoch: epoch, current: current)], marker: nil)
        }
    }

    /// Finishes a subscription whose older part the source cannot read
    /// (it keeps no history): a gap notice, then the cache, then live.
    func completeWithoutSource(_ conn: cf_conn_id, endpoint: String, subscription: UInt64, request: ReplayRequest,
                               coveredFrom: Int64) -> Outcome
    {
        state.withLock { s in
            let partition = PartitionID(topic: request.topic, partition: request.partition)
            // Coverage may have moved on since the plan: what is not cached now is lost too.
            let covered = max(coveredFrom, s.cache.coveredFrom(endpoint: endpoint, partition: partition) ?? coveredFrom)
            let cached = s.cache.messages(of: endpoint, in: partition, after: covered - 1)
            let gap = ClientProtocol.gap(
                endpoint: endpoint, epoch: request.epoch, fromSeq: request.fromOffset, toSeq: covered - 1,
                reason: "older than this node's cache, and the source keeps no history")
            guard fits(cached.count, cached.reduce(0) { $0 + $1.bytes }) else {
                resumes.count(.cache, .tooLarge)
                return refuseTooLarge(conn, endpoint, subscription, count: cached.count)
            }
            resumes.count(.cache, .gap)
            return queue(conn, endpoint, subscription, frames: cached.map { cf_frame_retain($0.frame) }, notices: [gap],
                         marker: ClientProtocol.replayed(endpoint: endpoint, count: cached.count, source: "cache"))
        }
    }

    /// The cache's size and how many messages it evicted, for logs, metrics and tests.
    func cacheTotals() -> (bytes: Int, messages: Int, endpoints: Int, evictions: UInt64) {
        state.withLock { ($0.cache.totalBytes, $0.cache.totalMessages, $0.cache.histories.count, $0.cache.evictions) }
    }

    // MARK: Internals (under the lock)

    private func fits(_ count: Int, _ bytes: Int) -> Bool {
        count <= configuration.maxReplayMessages && bytes <= maxReplayBytes
    }

    /// Queues notices, replay frames (references handed over), the marker
    /// (`replayed` after a replay, `live` when going live) and the
    /// subscription, in that order, if still wanted.
    private func queue(_ conn: cf_conn_id, _ endpoint: String, _ subscription: UInt64, frames: [OpaquePointer],
                       notices: [String], marker: String?) -> Outcome
    {
        let queued = ledger.confirm(conn, endpoint: endpoint, subscription: subscription) {
            for notice in notices { fanout.sendText(conn, notice) }
            for frame in frames { fanout.send(conn, frame: frame) }
            if let marker { fanout.sendText(conn, marker) }
            fanout.subscribe(conn, to: endpoint)
        }
        if !queued { frames.forEach { cf_frame_release($0) } }
        return queued ? .subscribed(replayed: frames.count) : .refused
    }

    private func refuseTooLarge(_ conn: cf_conn_id, _ endpoint: String, _ subscription: UInt64, count: Int) -> Outcome {
        fanout.sendText(conn, ClientProtocol.error(
            .replayTooLarge,
            "the replay (\(count) messages) exceeds this node's limits (recovery.replay.max_messages, half of websocket.max_output_bytes); subscribe without \"from\" to go on live",
            endpoint: endpoint, id: nil))
        return .refused
    }

    /// Waiters whose partition has caught up, or whose time is up.
    private func resolveWaiters(_ s: inout State, nowNs: UInt64) -> [ReadyWaiter] {
        var ready: [ReadyWaiter] = []
        var keep: [Waiter] = []
        for w in s.waiters {
            if let p = s.cache.state(of: w.partition), p.epoch == w.position.epoch, w.position.seq <= p.lastOffset {
                let outcome = plan(&s, conn: w.conn, endpoint: w.endpoint, topic: w.partition.topic,
                                   options: SubscribeOptions(resume: w.position), subscription: w.subscription,
                                   nowNs: nowNs)
                ready.append(ReadyWaiter(conn: w.conn, endpoint: w.endpoint, subscription: w.subscription, outcome: outcome))
            } else if nowNs >= w.deadlineNs {
                resumes.count(.cache, .unavailable)
                fanout.sendText(w.conn, ClientProtocol.error(
                    .resumeUnavailable,
                    "this node has not reached seq \(w.position.seq) of this endpoint within recovery.replay.resume_wait_ms; resume again later or elsewhere",
                    endpoint: w.endpoint, id: nil))
                ready.append(ReadyWaiter(conn: w.conn, endpoint: w.endpoint, subscription: w.subscription, outcome: .refused))
            } else {
                keep.append(w)
            }
        }
        s.waiters = keep
        return ready
    }

    /// The `live` message for a subscription going live now: the last offset
    /// of the endpoint's partition handed to the loops, read under the lock
    /// that orders batches against subscriptions (so exact). Nil when the
    /// node does not know the endpoint's partition (nothing of it cached).
    private func livePosition(_ s: State, _ endpoint: String) -> String? {
        guard let partition = s.cache.partition(of: endpoint), let state = s.cache.state(of: partition),
              state.epoch == s.cache.epoch(of: endpoint)
        else { return nil }
        return ClientProtocol.live(endpoint: endpoint, epoch: state.epoch, seq: state.lastOffset)
    }

    /// The endpoint's latest message flagged as a snapshot, when asked for and cached.
    private func snapshot(_ s: State, _ endpoint: String, _ options: SubscribeOptions) -> [OpaquePointer] {
        guard options.snapshot, let latest = s.cache.latest(of: endpoint), let copy = DeliveryFrame.snapshotCopy(of: latest.frame)
        else { return [] }
        return [copy]
    }
}
