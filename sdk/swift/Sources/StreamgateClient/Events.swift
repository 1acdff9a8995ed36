/// The client's connection state.
public enum ConnectionState: String, Sendable {
    /// `run()` has not started.
    case idle
    /// The first connection attempt.
    case connecting
    /// A node welcomed the client: requests are sent.
    case connected
    /// The connection was lost; the client waits out its backoff and tries the next node.
    case reconnecting
    /// `close()` was called or `run()` ended.
    case closed
}

/// What happens to the client as a whole (`StreamgateClient.events`).
public enum ClientEvent: Sendable {
    case state(ConnectionState)
    /// A node welcomed the client: its URL, the token's subject and expiry (seconds since the Unix epoch).
    case connected(url: String, subject: String?, expiresAt: Double?)
    /// The connection to `url` ended: the close code when the gateway sent one, and why.
    case disconnected(url: String, code: Int?, reason: String)
    /// The node at `url` drains and asked the client to move: within `reconnectWithin`
    /// it finishes its requests there, connects to the next node and resumes.
    case moving(url: String, reconnectWithin: Duration)
    /// The token provider's new token was accepted in-band.
    case tokenRefreshed
    /// Something the application should know that belongs to no request: a revoked
    /// or expired token, a failed token refresh, a token provider that threw.
    case error(StreamgateError)
}

/// What happens to one subscription (`Subscription.events`). Each notice comes
/// with the SDK's default reaction already under way.
public enum SubscriptionEvent: Sendable, Equatable {
    /// The gateway accepted the subscription (again after every reconnect), under this canonical name.
    case subscribed(endpoint: String)
    /// A resume's replay is complete (`source`: `cache` or `kafka`): what follows is live.
    case replayed(count: Int, source: String)
    /// Messages were skipped: a `gap` notice (seqs `fromSeq...toSeq` are gone from the
    /// log), or `replay_too_large` (no seqs: the SDK went on live without them).
    case gap(fromSeq: Int64?, toSeq: Int64?, message: String)
    /// The position's epoch is not current (topic re-created, another cluster):
    /// delivery goes on live. `currentEpoch` when the node knows it.
    case staleEpoch(currentEpoch: String?, message: String)
    /// A resume was refused for now (`resume_unavailable`, `replay_failed`): the SDK
    /// tries again after about `retryResumeDelay`.
    case retry(StreamgateError)
    /// The subscription is over: `nil` when the application unsubscribed or closed the
    /// client, else why (refused, or ended by the gateway: `revoked`).
    case ended(StreamgateError?)
}
