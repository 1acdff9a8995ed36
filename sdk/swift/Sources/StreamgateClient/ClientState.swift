/// Everything about a client that changes, kept under one lock
/// (`StreamgateClient.shared`). Nothing here suspends.
struct ClientState {
    var connection: ConnectionState = .idle
    var started = false
    var closed = false
    /// The index in `urls` of the node the client is on, or tries next.
    var node = 0
    /// The current connection, between the upgrade and its end.
    var link: Link?
    /// Every live subscription, by the endpoint as the application asked for it.
    var subscriptions: [String: Subscription] = [:]
    /// The same, by the gateway's canonical name, for deliveries and notices.
    var routes: [String: Subscription] = [:]
    /// Requests waiting for their reply, by id; a subscribe knows its subscription so
    /// that the reader routes its deliveries from the moment `subscribed` arrives.
    var pending: [Int: PendingRequest] = [:]
    var nextRequestID = 1
    var connectedWaiters: [Int: CheckedContinuation<Void, any Error>] = [:]
    var nextWaiterID = 0

    struct PendingRequest {
        let reply: AsyncThrowingStream<Reply, any Error>.Continuation
        let subscription: Subscription?
    }

    /// The live subscription a frame names: by the name asked for, else the canonical one.
    func route(_ endpoint: String?) -> Subscription? {
        guard let endpoint else { return nil }
        if let direct = subscriptions[endpoint], direct.isActive { return direct }
        if let routed = routes[endpoint], routed.isActive { return routed }
        return nil
    }

    mutating func remove(_ subscription: Subscription) {
        if subscriptions[subscription.endpoint] === subscription { subscriptions[subscription.endpoint] = nil }
        if let canonical = subscription.canonicalEndpoint, routes[canonical] === subscription { routes[canonical] = nil }
    }

    /// Ends every waiting request with `error` (the connection is gone).
    mutating func failPending(_ error: StreamgateError) {
        for request in pending.values { request.reply.finish(throwing: error) }
        pending.removeAll()
    }
}
