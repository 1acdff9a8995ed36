public import NIOSSL

extension StreamgateClient {
    /// Where to connect, with which credentials, and how to behave when a node is lost.
    public struct Configuration: Sendable {
        /// The cluster's nodes (`ws://host:port/ws` or `wss://...`): the client is on
        /// one at a time and moves to the next when the connection is lost.
        public var urls: [String]
        /// The bearer token, sent as `Authorization: Bearer` at every connect.
        public var token: TokenSource
        /// Reconnect delay before the first retry, doubling per failed attempt up to
        /// `maxReconnectDelay`; with `jitter`, a random delay below that (full jitter).
        public var minReconnectDelay: Duration = .milliseconds(100)
        public var maxReconnectDelay: Duration = .seconds(10)
        public var jitter = true
        /// With no frame from the gateway for half this time the client sends a `ping`;
        /// with none for all of it, it drops the connection and fails over.
        public var livenessTimeout: Duration = .seconds(15)
        /// How long a request (subscribe, publish, auth) waits for its reply.
        public var requestTimeout: Duration = .seconds(10)
        /// After `resume_unavailable` or `replay_failed`, the resume is tried again after
        /// about this long (randomised between half and one and a half times it).
        public var retryResumeDelay: Duration = .milliseconds(500)
        /// The largest message the client accepts (a larger one closes the connection with 1009).
        public var maxMessageBytes = 16 << 20
        /// TLS for `wss://` URLs; nil: the system's trust roots.
        public var tlsConfiguration: TLSConfiguration?

        public init(urls: [String], token: TokenSource = .none) {
            self.urls = urls
            self.token = token
        }

        /// The first setting that cannot work, named; nil when all can.
        func problem() -> String? {
            if urls.isEmpty { return "urls: give at least one gateway URL" }
            if let bad = urls.first(where: { !($0.hasPrefix("ws://") || $0.hasPrefix("wss://")) }) {
                return "urls: \(bad) is not a ws:// or wss:// URL"
            }
            if minReconnectDelay <= .zero || maxReconnectDelay < minReconnectDelay {
                return "minReconnectDelay must be positive and at most maxReconnectDelay"
            }
            if livenessTimeout <= .zero { return "livenessTimeout must be positive" }
            if requestTimeout <= .zero { return "requestTimeout must be positive" }
            if maxMessageBytes < 1024 { return "maxMessageBytes must be at least 1024" }
            return nil
        }
    }

    /// Where the client's bearer token comes from.
    public enum TokenSource: Sendable {
        /// No token: the connection is anonymous (rights only from authorizers such as `allow-all`).
        case none
        /// One token for the client's whole life.
        case fixed(String)
        /// Called at every connect, when the gateway warns that the token expires
        /// (`token_expiring`: the new one is sent in-band, no reconnect), and after
        /// `token_expired` or a revocation (the ended subscriptions then resume).
        case provider(@Sendable () async throws -> String)
    }
}
