import CFanout
import StreamgatePluginAPI

/// Where live records meet subscriptions: `MessageRouter` hands it each
/// batch; `Subscriptions` hands it each new subscription, with or without a
/// resume position. It owns the join between the cache (`CachedFanout`) and
/// the source's replays (`SourceReplayer`): a subscription the cache can
/// complete is queued at once, one older than the cache is read from the
/// source first, and one ahead of this node waits until a batch catches up
/// (so batches pass through here, and may carry waiting resumes on).
final class ResumeCoordinator: RoutedRecordSink {
    /// Reads from the source one connection may have running at once, so
    /// one client cannot fill the node's replay queue.
    static let maxReplaysPerConnection = 2

    private let cache: CachedFanout
    /// nil: the source keeps no history (resumes older than the cache get a gap notice).
    private let replayer: SourceReplayer?
    private let ledger: any SubscriptionLedger
    private let fanout: any FanoutPort

    init(cache: CachedFanout, replayer: SourceReplayer?, ledger: any SubscriptionLedger, fanout: any FanoutPort) {
        self.cache = cache
        self.replayer = replayer
        self.ledger = ledger
        self.fanout = fanout
    }

    // MARK: Live records

    func publish(_ records: [RoutedRecord]) {
        for ready in cache.publish(records) { follow(ready) }
    }

    func partitionStarted(_ start: PartitionStart) { cache.partitionStarted(start) }

    /// Periodic upkeep (about every 100 ms): cache expiry, and waiting
    /// resumes whose time is up or that can go on while no records arrive.
    func tick() {
        for ready in cache.tick() { follow(ready) }
    }

    // MARK: Subscriptions

    /// Subscribes `conn` to `endpoint` (of `topic`), replaying first what
    /// `options` ask for. The `subscribed` acknowledgement must already be queued.
    func subscribe(_ conn: cf_conn_id, endpoint: String, topic: String, options: SubscribeOptions, subscription: UInt64) {
        let outcome = cache.subscribe(conn, endpoint: endpoint, topic: topic, options: options, subscription: subscription)
        follow(outcome, conn: conn, endpoint: endpoint, subscription: subscription)
    }

    private func follow(_ ready: CachedFanout.ReadyWaiter) {
        follow(ready.outcome, conn: ready.conn, endpoint: ready.endpoint, subscription: ready.subscription)
    }

    /// Carries a subscription on after the cache's answer: reads from the
    /// source what the cache no longer has, or forgets a refused one.
    private func follow(_ outcome: CachedFanout.Outcome, conn: cf_conn_id, endpoint: String, subscription: UInt64) {
        switch outcome {
        case .subscribed, .waiting:
            return
        case .refused:
            forget(conn, endpoint: endpoint, subscription: subscription)
        case .fetch(let request, let coveredFrom):
            guard let replayer else {
                return follow(cache.completeWithoutSource(
                    conn, endpoint: endpoint, subscription: subscription, request: request, coveredFrom: coveredFrom),
                    conn: conn, endpoint: endpoint, subscription: subscription)
            }
            guard ledger.beginReplay(conn, limit: Self.maxReplaysPerConnection) else {
                return fail(conn, endpoint: endpoint, subscription: subscription, .replayFailed,
                            "this connection already has \(Self.maxReplaysPerConnection) resumes being read from the source; resume again when they are done")
            }
            let slot = ReplaySlot { [ledger] in ledger.endReplay(conn) }
            if !replayer.fetch(job(request, coveredFrom: coveredFrom, conn: conn, endpoint: endpoint,
                                   subscription: subscription, slot: slot)) {
                slot.release()
                fail(conn, endpoint: endpoint, subscription: subscription, .replayFailed,
                     "too many replays are waiting on this node; resume again shortly")
            }
        }
    }

    /// The read from the source for one resume, and how each way it can end
    /// finishes the subscription. The replay slot is given back before the
    /// client hears the answer (see `ReplaySlot`).
    private func job(_ request: ReplayRequest, coveredFrom: Int64, conn: cf_conn_id, endpoint: String,
                     subscription: UInt64, slot: ReplaySlot) -> SourceReplayer.Job
    {
        SourceReplayer.Job(
            request: request, endpoint: endpoint, coveredFrom: coveredFrom,
            attempt: { [self] position, frames, lost in
                let progress = cache.completeFetch(
                    conn, endpoint: endpoint, subscription: subscription, request: request, position: position,
                    fetched: frames, lost: lost, beforeAnswer: slot.release)
                if case .finished(.refused) = progress { forget(conn, endpoint: endpoint, subscription: subscription) }
                return progress
            },
            stale: { [self] current in
                slot.release()
                let outcome = cache.completeStale(
                    conn, endpoint: endpoint, subscription: subscription, epoch: request.epoch, current: current)
                if case .refused = outcome { forget(conn, endpoint: endpoint, subscription: subscription) }
            },
            failed: { [self] code, reason in
                slot.release()
                fail(conn, endpoint: endpoint, subscription: subscription, code, reason)
            },
            done: slot.release,
            isWanted: { [ledger] in ledger.isCurrent(conn, endpoint: endpoint, subscription: subscription) })
    }

    /// Tells the client a subscription did not come to be, if it is still
    /// that subscription (an unsubscribe meanwhile already answered it).
    private func fail(_ conn: cf_conn_id, endpoint: String, subscription: UInt64, _ code: ClientProtocol.ErrorCode,
                      _ message: String)
    {
        cache.resumes.count(.kafka, .failed)
        ledger.forget(conn, endpoint: endpoint, subscription: subscription) {
            fanout.sendText(conn, ClientProtocol.error(code, message, endpoint: endpoint, id: nil))
        }
    }

    /// Drops a subscription that did not come to be (if it is still that one).
    private func forget(_ conn: cf_conn_id, endpoint: String, subscription: UInt64) {
        ledger.forget(conn, endpoint: endpoint, subscription: subscription) {}
    }
}

/// Where the router hands framed batches (and partition starts).
protocol RoutedRecordSink: Sendable {
    /// Consumes the records' frame references.
    func publish(_ records: [RoutedRecord])
    func partitionStarted(_ start: PartitionStart)
}
