import CFanout
import StreamgatePluginAPI
import Synchronization

/// Subscribe and unsubscribe requests: resolve the endpoint, check the
/// connection's rights and its subscription limit, acknowledge, and hand the
/// subscription to the `ResumeCoordinator` (which queues any replay before it).
/// Also ends subscriptions when rights shrink or credentials go.
final class Subscriptions: Sendable {
    private let table: SessionTable
    private let resolver: EndpointResolver
    private let resumes: ResumeCoordinator
    private let fanout: any FanoutPort
    private let maxPerConnection: Int
    /// Tokens telling one subscription of an endpoint from a later one.
    private let nextSubscription = Atomic<UInt64>(1)
    private let overLimit = Atomic<UInt64>(0)

    init(table: SessionTable, resolver: EndpointResolver, resumes: ResumeCoordinator, fanout: any FanoutPort,
         maxPerConnection: Int)
    {
        self.table = table
        self.resolver = resolver
        self.resumes = resumes
        self.fanout = fanout
        self.maxPerConnection = maxPerConnection
    }

    /// Subscribes refused for going over `limits.max_subscriptions_per_connection`.
    var refusedOverLimit: UInt64 { overLimit.load(ordering: .relaxed) }

    /// Validates, authorizes and subscribes. The `subscribed` acknowledgement
    /// (or the error) is queued before anything the subscription delivers.
    func subscribe(_ conn: cf_conn_id, endpoint: String, id: JSONValue?, options: SubscribeOptions) {
        let address: KafkaAddress
        let canonical: String
        switch resolver.resolve(endpoint, id: id) {
        case .refused(let reply): return fanout.sendText(conn, reply)
        case .found(_, nil):
            return fanout.sendText(conn, ClientProtocol.error(
                .invalidEndpoint, "endpoint maps to no deliverable key", endpoint: endpoint, id: id))
        case .found(let found, let name?):
            address = found
            canonical = name
        }
        guard let identity = table.session(conn)?.identity else { return }
        if let refusal = AccessPolicy.refusal(of: .subscribe, to: canonical, by: identity) {
            return fanout.sendText(conn, ClientProtocol.error(refusal.code, refusal.message, endpoint: endpoint, id: id))
        }
        let subscription = nextSubscription.add(1, ordering: .relaxed).newValue
        let limit = maxPerConnection
        let added = table.withSession(conn) { session -> Bool? in
            if session.endpoints[canonical] != nil { return false }
            guard session.endpoints.count < limit else { return nil }
            session.endpoints[canonical] = subscription
            return true
        }
        guard let added else { return }  // the connection is gone
        guard let added else {
            overLimit.add(1, ordering: .relaxed)
            return fanout.sendText(conn, ClientProtocol.error(
                .tooManySubscriptions, "at most \(maxPerConnection) subscriptions per connection", endpoint: endpoint, id: id))
        }
        fanout.sendText(conn, ClientProtocol.subscribed(endpoint: canonical, id: id))
        guard added else { return }  // already subscribed: acknowledged, nothing more
        resumes.subscribe(conn, endpoint: canonical, topic: address.topic, options: options, subscription: subscription)
    }

    func unsubscribe(_ conn: cf_conn_id, endpoint: String, id: JSONValue?) {
        let canonical = resolver.canonicalNameOrSelf(endpoint)
        // Under the sessions lock, so a resume finishing now cannot subscribe after this.
        _ = table.withSession(conn) { session -> Void in
            if session.endpoints.removeValue(forKey: canonical) != nil { fanout.unsubscribe(conn, from: canonical) }
        }
        fanout.sendText(conn, ClientProtocol.unsubscribed(endpoint: canonical, id: id))
    }

    /// Ends each subscription of `conn` for which `ends` is true (in endpoint
    /// order), telling the client `reason(endpoint)` with a `revoked` notice.
    /// `update` changes the session first, in the same critical section, so
    /// no resume can complete between the change and the ending.
    func end(_ conn: cf_conn_id, where ends: (String) -> Bool, reason: (String) -> String,
             updating update: (inout Session) -> Void = { _ in })
    {
        _ = table.withSession(conn) { session -> Void in
            update(&session)
            for endpoint in session.endpoints.keys.sorted() where ends(endpoint) {
                session.endpoints.removeValue(forKey: endpoint)
                fanout.unsubscribe(conn, from: endpoint)
                fanout.sendText(conn, ClientProtocol.revoked(endpoint: endpoint, reason: reason(endpoint)))
            }
        }
    }
}
