import CFanout
import StreamgatePluginAPI
import Synchronization

/// Who each connection is: the first authentication (its result is the
/// `welcome`, or a refusal that closes the connection), in-band `auth`
/// refreshes, and the changes of identity that revocation and expiry bring
/// (see `CredentialUpkeep`). Narrowed rights end the subscriptions they no
/// longer allow; the connection stays usable.
final class ConnectionAuthenticator: Sendable {
    struct Settings: Sendable {
        /// How long before a token's expiry the client is warned.
        var tokenExpiryWarningSeconds = 30.0
        /// `sessions.on_token_expiry = close`: expiry or revocation closes the
        /// connection instead of ending its subscriptions.
        var closeOnTokenExpiry = false
        /// `tracing.propagate`: `welcome` says deliveries may carry trace context.
        var announcesTraceContext = false
    }

    let authorizers: AuthorizerChain
    let settings: Settings
    private let table: SessionTable
    private let subscriptions: Subscriptions
    private let fanout: any FanoutPort
    /// The authorizers' revisions at the upkeep's last look (nil before it).
    private let revisionsSeen = Mutex<[UInt64]?>(nil)
    private let welcomed = Atomic<UInt64>(0)
    private let refused = Atomic<UInt64>(0)
    private let expiredCount = Atomic<UInt64>(0)
    private let revokedCount = Atomic<UInt64>(0)

    init(authorizers: AuthorizerChain, table: SessionTable, subscriptions: Subscriptions, fanout: any FanoutPort,
         settings: Settings)
    {
        self.authorizers = authorizers
        self.table = table
        self.subscriptions = subscriptions
        self.fanout = fanout
        self.settings = settings
    }

    /// Connections welcomed / refused at their first authentication.
    var connectionsWelcomed: UInt64 { welcomed.load(ordering: .relaxed) }
    var connectionsRefused: UInt64 { refused.load(ordering: .relaxed) }
    /// Live connections whose credentials expired / were revoked.
    var credentialsExpired: UInt64 { expiredCount.load(ordering: .relaxed) }
    var credentialsRevoked: UInt64 { revokedCount.load(ordering: .relaxed) }

    /// The first authentication of a new connection, from the credentials
    /// of its upgrade request. True when it was welcomed (its waiting
    /// requests may now be handled); false when refused and closed, or gone.
    func authenticate(_ conn: cf_conn_id) async -> Bool {
        guard let credentials = table.session(conn)?.credentials else { return false }
        let seen = revisionsSeen.withLock { $0 }
        let decision = await authorizers.decide(credentials)
        switch decision.result {
        case .identified(let identity):
            let open = table.withSession(conn) { session -> Void in
                session.decidedBy = decision.by
                session.decidedAtRevision = Self.revision(of: decision.by, in: seen)
                session.identity = identity
            } != nil
            guard open else { return false }
            welcomed.add(1, ordering: .relaxed)
            fanout.sendText(conn, ClientProtocol.welcome(identity: identity, traceContext: settings.announcesTraceContext))
            return true
        case .denied(let reason):
            refuse(conn, reason: reason)
        case .abstain:
            refuse(conn, reason: "no authorizer accepts these credentials")
        }
        return false
    }

    /// An in-band `auth`: the new identity replaces the old one, and
    /// subscriptions its rights no longer allow end. A refused token leaves
    /// the connection as it was.
    func refresh(_ conn: cf_conn_id, token: String, id: JSONValue?) async {
        guard let info = table.session(conn)?.info else { return }
        let credentials = Credentials(token: token, connection: info)
        let seen = revisionsSeen.withLock { $0 }
        let decision = await authorizers.decide(credentials)
        guard case .identified(let identity) = decision.result else {
            let reason = if case .denied(let why) = decision.result { why } else { "no authorizer accepts this token" }
            return fanout.sendText(conn, ClientProtocol.error(.unauthorized, reason, id: id))
        }
        replaceIdentity(conn, identity, credentials: credentials, by: decision.by,
                        revision: Self.revision(of: decision.by, in: seen),
                        reply: ClientProtocol.authenticated(identity: identity, id: id),
                        why: "the new token's rights do not include subscribe on")
    }

    /// Gives a live connection a new identity: sends `reply` (if any), then
    /// ends each subscription the new rights do not allow, saying `why`.
    func replaceIdentity(_ conn: cf_conn_id, _ identity: Identity, credentials: Credentials, by: Int?,
                         revision: UInt64?, reply: String?, why: String)
    {
        subscriptions.end(
            conn, where: { !identity.rights.allows(.subscribe, $0) }, reason: { "\(why) \($0)" },
            updating: { session in
                session.identity = identity
                session.credentials = credentials
                session.decidedBy = by
                session.decidedAtRevision = revision
                session.warned = false
                session.expired = false
                if let reply { fanout.sendText(conn, reply) }
            })
    }

    /// Records the authorizers' revisions the upkeep just read, before it
    /// looks for connections decided on older ones: a decision that begins
    /// after this is made on a state at least this new.
    func noteRevisions(_ revisions: [UInt64]) {
        revisionsSeen.withLock { $0 = revisions }
    }

    private static func revision(of authorizer: Int?, in seen: [UInt64]?) -> UInt64? {
        guard let authorizer, let seen, seen.indices.contains(authorizer) else { return nil }
        return seen[authorizer]
    }

    /// Ends every subscription of a connection whose credentials expired or
    /// were revoked (`message` says which), or closes it when so configured.
    func withdraw(_ conn: cf_conn_id, code: ClientProtocol.ErrorCode, message: String, closeReason: String) {
        if code == .tokenExpired {
            expiredCount.add(1, ordering: .relaxed)
        } else {
            revokedCount.add(1, ordering: .relaxed)
        }
        fanout.sendText(conn, ClientProtocol.error(code, message, id: nil))
        if settings.closeOnTokenExpiry {
            return fanout.close(conn, code: UInt16(CF_CLOSE_POLICY_VIOLATION), reason: closeReason)
        }
        subscriptions.end(
            conn, where: { _ in true }, reason: { _ in message },
            updating: { session in
                session.expired = true
                if code == .unauthorized, let subject = session.identity?.subject {
                    session.identity = Identity(subject: subject, rights: .none, expiresAt: nil)
                }
            })
    }

    private func refuse(_ conn: cf_conn_id, reason: String) {
        refused.add(1, ordering: .relaxed)
        fanout.sendText(conn, ClientProtocol.error(.unauthorized, reason, id: nil))
        fanout.close(conn, code: UInt16(CF_CLOSE_POLICY_VIOLATION), reason: "unauthorized")
    }
}
