import StreamgatePluginAPI

/// What the control plane knows about one open client connection. Lives in
/// the `SessionTable`, changed only under its lock.
struct Session {
    /// The credentials the identity came from (re-checked on revocation),
    /// with what the upgrade request said about the connection.
    var credentials: Credentials
    var info: ConnectionInfo { credentials.connection }
    /// Who the connection is; nil until the first authentication ends.
    var identity: Identity?
    /// Which authorizer of the chain identified it (nil: none did).
    var decidedBy: Int?
    /// That authorizer's revision as the upkeep last saw it before the
    /// decision began (nil: not seen yet). The state that decided is at
    /// least this new, so the upkeep checks the connection again whenever
    /// the authorizer's revision differs (see `CredentialUpkeep`).
    var decidedAtRevision: UInt64?
    /// The expiry warning was sent / the expiry was applied.
    var warned = false
    var expired = false
    /// Client publishes allowed now (see `PublishGate`).
    var publishBucket: TokenBucket?
    /// Requests that arrived before the identity, in order (nil once they
    /// have all been handled).
    var waiting: [[UInt8]]? = []
    /// Each subscribed endpoint, with the token of that subscription (a
    /// resume finishing late checks it is still the same subscription).
    var endpoints: [String: UInt64] = [:]
    /// Resumes of this connection being read from the source now.
    var replaying = 0

    init(credentials: Credentials) {
        self.credentials = credentials
    }
}

/// A token bucket: refilled at `rate` per second, holding at most `burst`;
/// starts full.
struct TokenBucket: Equatable {
    let rate: Double
    let burst: Double
    private(set) var tokens: Double
    private(set) var countedAt: Double

    init(rate: Double, burst: Double, now: Double) {
        self.rate = rate
        self.burst = burst
        tokens = burst
        countedAt = now
    }

    /// Takes one token at `now` (seconds, monotonic); false when empty.
    mutating func take(now: Double) -> Bool {
        tokens = min(burst, tokens + max(0, now - countedAt) * rate)
        countedAt = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
