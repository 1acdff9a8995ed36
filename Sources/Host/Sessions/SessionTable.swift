import CFanout
import StreamgatePluginAPI
import Synchronization

/// Every open connection's `Session`, under one lock: the sessions lock.
///
/// Lock order (docs/architecture.md): the cache lock (`CachedFanout`) may be
/// held when this one is taken — that is how a resume is confirmed — never
/// the other way round; while this one is held, only the loops' command
/// queues are touched (posting to a `FanoutPort`), and nothing blocks.
final class SessionTable: SubscriptionLedger {
    private let table = Mutex<[cf_conn_id: Session]>([:])

    func open(_ conn: cf_conn_id, credentials: Credentials) {
        table.withLock { $0[conn] = Session(credentials: credentials) }
    }

    func close(_ conn: cf_conn_id) {
        _ = table.withLock { $0.removeValue(forKey: conn) }
    }

    /// Runs `body` on the connection's session under the lock; nil when the
    /// connection is gone.
    func withSession<Result: Sendable>(_ conn: cf_conn_id, _ body: (inout Session) -> Result) -> Result? {
        table.withLock { table -> Result? in
            guard var session = table[conn] else { return nil }
            defer { table[conn] = session }
            return body(&session)
        }
    }

    /// Runs `body` on every session under the lock (upkeep).
    func withEverySession<Result: Sendable>(_ body: (inout [cf_conn_id: Session]) -> Result) -> Result {
        table.withLock { body(&$0) }
    }

    /// A copy of the connection's session (nil when gone).
    func session(_ conn: cf_conn_id) -> Session? { table.withLock { $0[conn] } }

    // MARK: SubscriptionLedger

    func isCurrent(_ conn: cf_conn_id, endpoint: String, subscription: UInt64) -> Bool {
        table.withLock { $0[conn]?.endpoints[endpoint] == subscription }
    }

    func confirm(_ conn: cf_conn_id, endpoint: String, subscription: UInt64, queue: () -> Void) -> Bool {
        table.withLock { table in
            guard table[conn]?.endpoints[endpoint] == subscription else { return false }
            queue()
            return true
        }
    }

    func forget(_ conn: cf_conn_id, endpoint: String, subscription: UInt64, then notify: () -> Void) {
        table.withLock { table in
            guard table[conn]?.endpoints[endpoint] == subscription else { return }
            table[conn]?.endpoints.removeValue(forKey: endpoint)
            notify()
        }
    }

    func beginReplay(_ conn: cf_conn_id, limit: Int) -> Bool {
        table.withLock { table in
            guard let session = table[conn], session.replaying < limit else { return false }
            table[conn]?.replaying += 1
            return true
        }
    }

    func endReplay(_ conn: cf_conn_id) {
        table.withLock { table in
            if let n = table[conn]?.replaying, n > 0 { table[conn]?.replaying = n - 1 }
        }
    }
}

/// Which subscriptions are still wanted: the resume path's view of the
/// sessions. A subscription is one (connection, endpoint, token); an
/// unsubscribe, a revocation or a new subscribe to the same endpoint makes
/// an older token stale, and a resume finishing for a stale token queues
/// nothing.
protocol SubscriptionLedger: Sendable {
    func isCurrent(_ conn: cf_conn_id, endpoint: String, subscription: UInt64) -> Bool
    /// Runs `queue` (posting the replay and the subscription) if the
    /// subscription is current, atomically with the check; called under the
    /// cache lock, so the sessions lock nests inside it.
    func confirm(_ conn: cf_conn_id, endpoint: String, subscription: UInt64, queue: () -> Void) -> Bool
    /// Drops a subscription that did not come to be, if it is still that
    /// one, and then runs `notify` (under the same lock, so an unsubscribe
    /// cannot slip in between).
    func forget(_ conn: cf_conn_id, endpoint: String, subscription: UInt64, then notify: () -> Void)
    /// Takes one of the connection's places for reads from the source.
    func beginReplay(_ conn: cf_conn_id, limit: Int) -> Bool
    func endReplay(_ conn: cf_conn_id)
}
