import Foundation
import CFanout
import StreamgatePluginAPI
import Synchronization

/// The control plane of client connections: what each connection is, and
/// what its subscribe / unsubscribe requests become.
///
/// Called on the C loop threads (one connection is always served by the same
/// loop). A connection is first authenticated by the authorizer chain (its
/// requests wait, in order, until then; `welcome` says it is done). Every
/// request is then validated by the mapping plugin, checked against the
/// topics the source serves, and checked against the connection's rights
/// before the loop subscribes it; a refusal is an error frame and the
/// connection stays open.
final class ClientSessions: @unchecked Sendable {
    struct Session {
        /// The credentials the identity came from (re-checked on revocation),
        /// with what the upgrade request said about the connection.
        var credentials: Credentials
        var info: ConnectionInfo { credentials.connection }
        /// Who the connection is; nil until the first authentication ends.
        var identity: Identity?
        /// Which authorizer of the chain identified it (nil: none did).
        var decidedBy: Int?
        /// The expiry warning was sent / the expiry was applied.
        var warned = false
        var expired = false
        /// Publish token bucket: tokens left, and when they were counted.
        var publishTokens = Double.infinity
        var publishCountedAt = 0.0
        /// Requests that arrived before the identity, in order (nil once
        /// they have all been handled).
        var waiting: [[UInt8]]? = []
        /// Each subscribed endpoint, with the token of that subscription (a
        /// replay finishing late checks it is still the same subscription).
        var endpoints: [String: UInt64] = [:]
        /// Resumes of this connection being read from the source now.
        var replaying = 0
    }

    /// Requests a connection may send before its authentication ends.
    static let maxWaitingRequests = 64

    private let mapper: any EndpointMapper
    let authorizers: AuthorizerChain
    private let servedTopics: Set<String>
    private let maxSubscriptions: Int
    let sessions = Mutex<[cf_conn_id: Session]>([:])
    /// The authorizers' revisions last seen by `upkeep`.
    let seenRevisions = Mutex<[UInt64]?>(nil)
    let tokenExpiryWarningSeconds: Double
    let closeOnTokenExpiry: Bool
    private let nextSubscription = Atomic<UInt64>(1)
    /// Set once before the loops start (pthread_create orders these writes
    /// before every callback).
    nonisolated(unsafe) private(set) var fanout: FanoutHandle?
    nonisolated(unsafe) private var cached: CachedFanout?
    nonisolated(unsafe) private var replayer: SourceReplayer?
    nonisolated(unsafe) private var publisher: (any PublishingSource)?
    /// Whether published records carry the publisher's subject and address as Kafka headers.
    nonisolated(unsafe) private var publishHeaders = true
    nonisolated(unsafe) private var publishRate = 100.0
    nonisolated(unsafe) private var publishBurst = 200.0
    private let rateLimited = Atomic<UInt64>(0)
    private let subscriptionsRefused = Atomic<UInt64>(0)
    /// Subscribes refused for going over `limits.max_subscriptions_per_connection`.
    var refusedSubscriptions: UInt64 { subscriptionsRefused.load(ordering: .relaxed) }
    /// Publishes refused for going over `limits.publish_rate_per_second`.
    var rateLimitedPublishes: UInt64 { rateLimited.load(ordering: .relaxed) }
    /// Reads from the source one connection may have running at once, so
    /// one client cannot fill the node's replay queue.
    static let maxReplaysPerConnection = 2

    init(mapper: any EndpointMapper, authorizers: AuthorizerChain, servedTopics: Set<String>,
         maxSubscriptions: Int = 1000, tokenExpiryWarningSeconds: Double = 30, closeOnTokenExpiry: Bool = false)
    {
        self.mapper = mapper
        self.authorizers = authorizers
        self.tokenExpiryWarningSeconds = tokenExpiryWarningSeconds
        self.closeOnTokenExpiry = closeOnTokenExpiry
        self.servedTopics = servedTopics
        self.maxSubscriptions = maxSubscriptions
    }

    func attach(_ handle: FanoutHandle) { fanout = handle }

    /// Where client publishes go (none: publishing is refused); before the loops start.
    func attach(publisher: (any PublishingSource)?, headers: Bool, ratePerSecond: Int = 100, burst: Int = 200) {
        self.publisher = publisher
        publishHeaders = headers
        publishRate = Double(ratePerSecond)
        publishBurst = Double(burst)
    }

    /// Takes one publish from the connection's bucket (refilled at
    /// `publishRate`, holding at most `publishBurst`); false when empty.
    private func takePublishToken(_ conn: cf_conn_id) -> Bool {
        let now = DispatchTime.now().uptimeNanoseconds
        let seconds = Double(now) / 1e9
        return sessions.withLock { table -> Bool in
            guard var session = table[conn] else { return false }
            let refill = session.publishTokens == .infinity ? publishBurst
                : min(publishBurst, session.publishTokens + (seconds - session.publishCountedAt) * publishRate)
            session.publishCountedAt = seconds
            guard refill >= 1 else {
                session.publishTokens = refill
                table[conn] = session
                return false
            }
            session.publishTokens = refill - 1
            table[conn] = session
            return true
        }
    }

    /// Connects the cache (and the source's replays, when it has them);
    /// before the loops start.
    func attach(cached: CachedFanout, replayer: SourceReplayer?) {
        self.cached = cached
        self.replayer = replayer
        cached.confirm = { [weak self] conn, endpoint, subscription, queue in
            self?.sessions.withLock { table -> Bool in
                guard table[conn]?.endpoints[endpoint] == subscription else { return false }
                queue()
                return true
            } ?? false
        }
        cached.onWaiterReady = { [weak self] conn, endpoint, subscription, outcome in
            self?.follow(outcome, conn: conn, endpoint: endpoint, subscription: subscription)
        }
    }

    func opened(_ conn: cf_conn_id, info: ConnectionInfo, apiKey: String? = nil) {
        let credentials = Credentials(token: AuthorizerChain.token(of: info), apiKey: apiKey, connection: info)
        sessions.withLock { $0[conn] = Session(credentials: credentials) }
        Task { [self] in
            let decision = await authorizers.decide(credentials)
            sessions.withLock { $0[conn]?.decidedBy = decision.by }
            authenticated(conn, decision.result)
        }
    }

    func closed(_ conn: cf_conn_id, code: UInt16) {
        _ = sessions.withLock { $0.removeValue(forKey: conn) }
    }

    /// The first authentication ended: welcome the client and handle what
    /// it sent meanwhile, or refuse it.
    private func authenticated(_ conn: cf_conn_id, _ result: AuthenticationResult) {
        guard let fanout else { return }
        switch result {
        case .identified(let identity):
            let open = sessions.withLock { table -> Bool in
                guard table[conn] != nil else { return false }
                table[conn]?.identity = identity
                return true
            }
            guard open else { return }
            fanout.sendText(conn, ClientProtocol.welcome(identity: identity))
            // Handle the waiting requests in order; new ones keep queueing
            // behind them until the queue is empty.
            while let next = sessions.withLock({ table -> [UInt8]?? in
                guard var session = table[conn], var waiting = session.waiting else { return nil }
                guard !waiting.isEmpty else {
                    session.waiting = nil
                    table[conn] = session
                    return .some(nil)
                }
                let first = waiting.removeFirst()
                session.waiting = waiting
                table[conn] = session
                return .some(first)
            }), let request = next {
                request.withUnsafeBytes { handle(conn, bytes: $0, fanout: fanout) }
            }
        case .denied(let reason):
            refuse(conn, reason: reason, fanout: fanout)
        case .abstain:
            refuse(conn, reason: "no authorizer accepts these credentials", fanout: fanout)
        }
    }

    /// An in-band `auth` ended: the new identity replaces the old one, and
    /// subscriptions its rights no longer allow end. A refused token leaves
    /// the connection as it was.
    private func reauthenticated(_ conn: cf_conn_id, _ result: AuthenticationResult, id: JSONValue?,
                                 credentials: Credentials, by: Int?)
    {
        guard let fanout else { return }
        guard case .identified(let identity) = result else {
            let reason = if case .denied(let why) = result { why } else { "no authorizer accepts this token" }
            fanout.sendText(conn, ClientProtocol.error(.unauthorized, reason, id: id))
            return
        }
        replaceIdentity(conn, identity, credentials: credentials, by: by, reply: ClientProtocol.authenticated(identity: identity, id: id),
                        why: "the new token's rights do not include subscribe on")
    }

    /// Gives a live connection a new identity: sends `reply` (if any), then
    /// ends each subscription the new rights do not allow, saying `why`.
    func replaceIdentity(_ conn: cf_conn_id, _ identity: Identity, credentials: Credentials, by: Int?, reply: String?,
                         why: String)
    {
        guard let fanout else { return }
        sessions.withLock { table in
            guard var session = table[conn] else { return }
            session.identity = identity
            session.credentials = credentials
            session.decidedBy = by
            session.warned = false
            session.expired = false
            if let reply { fanout.sendText(conn, reply) }
            for endpoint in session.endpoints.keys.sorted() where !identity.rights.allows(.subscribe, endpoint) {
                session.endpoints.removeValue(forKey: endpoint)
                fanout.unsubscribe(conn, from: endpoint)
                fanout.sendText(conn, ClientProtocol.revoked(endpoint: endpoint, reason: "\(why) \(endpoint)"))
            }
            table[conn] = session
        }
    }

    /// Ends every subscription of a connection whose credentials expired or
    /// were revoked (`message` says which), or closes it when so configured.
    func withdraw(_ conn: cf_conn_id, code: ClientProtocol.ErrorCode, message: String, closeReason: String) {
        guard let fanout else { return }
        fanout.sendText(conn, ClientProtocol.error(code, message, id: nil))
        if closeOnTokenExpiry {
            fanout.close(conn, code: UInt16(CF_CLOSE_POLICY_VIOLATION), reason: closeReason)
            return
        }
        sessions.withLock { table in
            guard var session = table[conn] else { return }
            session.expired = true
            if code == .unauthorized, let subject = session.identity?.subject {
                session.identity = Identity(subject: subject, rights: .none, expiresAt: nil)
            }
            for endpoint in session.endpoints.keys.sorted() {
                session.endpoints.removeValue(forKey: endpoint)
                fanout.unsubscribe(conn, from: endpoint)
                fanout.sendText(conn, ClientProtocol.revoked(endpoint: endpoint, reason: message))
            }
            table[conn] = session
        }
    }

    private func refuse(_ conn: cf_conn_id, reason: String, fanout: FanoutHandle) {
        fanout.sendText(conn, ClientProtocol.error(.unauthorized, reason, id: nil))
        fanout.close(conn, code: UInt16(CF_CLOSE_POLICY_VIOLATION), reason: "unauthorized")
    }

    func received(_ conn: cf_conn_id, isText: Bool, bytes: UnsafeRawBufferPointer) {
        guard let fanout else { return }
        guard isText else {
            fanout.sendText(conn, ClientProtocol.error(
                .unsupported, "binary messages are not part of protocol v1; send JSON text requests", id: nil))
            return
        }
        // Before the identity is known, requests wait (in order, bounded).
        let waited = sessions.withLock { table -> Bool? in
            guard var session = table[conn], var waiting = session.waiting else { return false }
            guard waiting.count < Self.maxWaitingRequests else { return nil }
            waiting.append([UInt8](bytes))
            session.waiting = waiting
            table[conn] = session
            return true
        }
        switch waited {
        case true?: return
        case nil:
            fanout.sendText(conn, ClientProtocol.error(
                .tooManyRequests, "more than \(Self.maxWaitingRequests) requests before authentication ended", id: nil))
            fanout.close(conn, code: UInt16(CF_CLOSE_POLICY_VIOLATION), reason: "too many requests")
        case false?:
            handle(conn, bytes: bytes, fanout: fanout)
        }
    }

    private func handle(_ conn: cf_conn_id, bytes: UnsafeRawBufferPointer, fanout: FanoutHandle) {
        do {
            switch try ClientProtocol.parse(bytes) {
            case .subscribe(let endpoint, let id, let options):
                if let reply = subscribe(conn, endpoint: endpoint, id: id, options: options, fanout: fanout) {
                    fanout.sendText(conn, reply)
                }
            case .unsubscribe(let endpoint, let id):
                fanout.sendText(conn, unsubscribe(conn, endpoint: endpoint, id: id, fanout: fanout))
            case .publish(let endpoint, let payload, let id):
                publish(conn, endpoint: endpoint, payload: payload, id: id, fanout: fanout)
            case .auth(let token, let id):
                guard let info = sessions.withLock({ $0[conn]?.info }) else { return }
                let credentials = Credentials(token: token, connection: info)
                Task { [self] in
                    let decision = await authorizers.decide(credentials)
                    reauthenticated(conn, decision.result, id: id, credentials: credentials, by: decision.by)
                }
            }
        } catch {
            fanout.sendText(conn, ClientProtocol.error(error.code, error.message, id: error.id))
        }
    }

    /// Validates, authorizes and produces a client's record; the reply comes
    /// when Kafka acknowledges it (or refuses).
    private func publish(_ conn: cf_conn_id, endpoint: String, payload: [UInt8], id: JSONValue?, fanout: FanoutHandle) {
        guard let publisher else {
            return fanout.sendText(conn, ClientProtocol.error(
                .unsupported, "this gateway's source does not take publishes", endpoint: endpoint, id: id))
        }
        let address: KafkaAddress
        let canonical: String
        switch resolve(endpoint, id: id) {
        case .refused(let reply): return fanout.sendText(conn, reply)
        case .found(let found, let name):
            address = found
            canonical = name ?? endpoint
        }
        guard let session = sessions.withLock({ $0[conn] }), let identity = session.identity else { return }
        if let refusal = Self.refusal(of: .publish, to: canonical, by: identity) {
            return fanout.sendText(conn, ClientProtocol.error(refusal.code, refusal.message, endpoint: endpoint, id: id))
        }
        guard takePublishToken(conn) else {
            rateLimited.add(1, ordering: .relaxed)
            return fanout.sendText(conn, ClientProtocol.error(
                .rateLimited, "more than \(Int(publishRate)) publishes per second (burst \(Int(publishBurst))): slow down",
                endpoint: endpoint, id: id))
        }
        let headers = publishHeaders
            ? [PublishHeader(name: "streamgate-subject", value: Array(identity.subject.utf8)),
               PublishHeader(name: "streamgate-client", value: Array(session.info.remoteAddress.utf8))]
            : []
        publisher.publish(PublishRequest(topic: address.topic, key: Array(address.key.utf8), value: payload, headers: headers)) {
            result in
            switch result {
            case .success(let receipt):
                fanout.sendText(conn, ClientProtocol.published(
                    endpoint: canonical, partition: receipt.partition, offset: receipt.offset, id: id))
            case .failure(let error):
                fanout.sendText(conn, ClientProtocol.error(
                    .publishFailed, "Kafka did not take the record: \(error.reason)", endpoint: canonical, id: id))
            }
        }
    }

    /// Validates, authorizes and subscribes. Returns the reply still to send,
    /// or nil when it was sent: an acknowledgement is queued before the loop
    /// subscribes, so it precedes every delivery.
    private func subscribe(_ conn: cf_conn_id, endpoint: String, id: JSONValue?, options: SubscribeOptions,
                           fanout: FanoutHandle) -> String?
    {
        let address: KafkaAddress
        let canonical: String
        switch resolve(endpoint, id: id) {
        case .refused(let reply): return reply
        case .found(_, nil):
            return ClientProtocol.error(.invalidEndpoint, "endpoint maps to no deliverable key", endpoint: endpoint, id: id)
        case .found(let found, let name?):
            address = found
            canonical = name
        }
        guard let identity = sessions.withLock({ $0[conn]?.identity }) else { return nil }
        if let refusal = Self.refusal(of: .subscribe, to: canonical, by: identity) {
            return ClientProtocol.error(refusal.code, refusal.message, endpoint: endpoint, id: id)
        }
        let subscription = nextSubscription.add(1, ordering: .relaxed).newValue
        let added = sessions.withLock { table -> Bool? in
            guard var session = table[conn] else { return nil }
            if session.endpoints[canonical] != nil { return false }
            guard session.endpoints.count < maxSubscriptions else { return nil }
            session.endpoints[canonical] = subscription
            table[conn] = session
            return true
        }
        guard let added else {
            subscriptionsRefused.add(1, ordering: .relaxed)
            return ClientProtocol.error(
                .tooManySubscriptions, "at most \(maxSubscriptions) subscriptions per connection", endpoint: endpoint, id: id)
        }
        let reply = ClientProtocol.subscribed(endpoint: canonical, id: id)
        guard added else { return reply }
        fanout.sendText(conn, reply)
        guard let cached else {
            fanout.subscribe(conn, to: canonical)
            return nil
        }
        let outcome = cached.subscribe(
            conn, endpoint: canonical, topic: address.topic, options: options, subscription: subscription)
        follow(outcome, conn: conn, endpoint: canonical, subscription: subscription)
        return nil
    }

    /// Carries a subscription on after the cache's answer: reads from the
    /// source what the cache no longer has, or forgets a refused one.
    private func follow(_ outcome: CachedFanout.Outcome, conn: cf_conn_id, endpoint: String, subscription: UInt64) {
        guard let cached else { return }
        switch outcome {
        case .subscribed, .waiting:
            return
        case .refused:
            forget(conn, endpoint: endpoint, subscription: subscription)
        case .fetch(let request, let coveredFrom):
            guard let replayer else {
                follow(cached.completeWithoutSource(
                    conn, endpoint: endpoint, subscription: subscription, request: request, coveredFrom: coveredFrom),
                    conn: conn, endpoint: endpoint, subscription: subscription)
                return
            }
            guard beginReplay(conn) else {
                fail(conn, endpoint: endpoint, subscription: subscription, .replayFailed,
                     "this connection already has \(Self.maxReplaysPerConnection) resumes being read from the source; resume again when they are done")
                return
            }
            let slot = ReplaySlot { self.endReplay(conn) }
            let job = SourceReplayer.Job(
                request: request, endpoint: endpoint, coveredFrom: coveredFrom,
                attempt: { position, frames, lost in
                    let progress = cached.completeFetch(
                        conn, endpoint: endpoint, subscription: subscription, request: request, position: position,
                        fetched: frames, lost: lost, beforeAnswer: slot.release)
                    if case .finished(.refused) = progress { self.forget(conn, endpoint: endpoint, subscription: subscription) }
                    return progress
                },
                stale: { current in
                    slot.release()
                    let outcome = cached.completeStale(
                        conn, endpoint: endpoint, subscription: subscription, epoch: request.epoch, current: current)
                    if case .refused = outcome { self.forget(conn, endpoint: endpoint, subscription: subscription) }
                },
                failed: { code, reason in
                    slot.release()
                    self.fail(conn, endpoint: endpoint, subscription: subscription, code, reason)
                },
                done: slot.release,
                isWanted: { self.sessions.withLock { $0[conn]?.endpoints[endpoint] == subscription } })
            if !replayer.fetch(job) {
                slot.release()
                fail(conn, endpoint: endpoint, subscription: subscription, .replayFailed,
                     "too many replays are waiting on this node; resume again shortly")
            }
        }
    }

    /// An endpoint a client named: its Kafka address and the mapper's own
    /// name for it (nil when its key maps back to no endpoint), or the
    /// error reply.
    private enum Resolution {
        case found(KafkaAddress, canonical: String?)
        case refused(String)
    }

    private func resolve(_ endpoint: String, id: JSONValue?) -> Resolution {
        let address: KafkaAddress
        do {
            address = try mapper.address(of: endpoint)
        } catch {
            return .refused(ClientProtocol.error(.invalidEndpoint, error.reason, endpoint: endpoint, id: id))
        }
        guard servedTopics.contains(address.topic) else {
            return .refused(ClientProtocol.error(
                .unknownTopic, "topic '\(address.topic)' is not served by this gateway", endpoint: endpoint, id: id))
        }
        return .found(address, canonical: canonicalName(of: address))
    }

    /// Deliveries are addressed by the mapper's own name for (topic, key).
    private func canonicalName(of address: KafkaAddress) -> String? {
        var key = address.key
        return key.withUTF8 { mapper.endpoint(topic: address.topic, key: UnsafeRawBufferPointer($0)) }
    }

    /// Why `identity` may not act on `endpoint` now, or nil when it may.
    static func refusal(of action: EndpointAction, to endpoint: String, by identity: Identity, now: Double = Date().timeIntervalSince1970)
        -> (code: ClientProtocol.ErrorCode, message: String)?
    {
        if let expiry = identity.expiresAt, expiry <= now {
            return (.tokenExpired, "the token of '\(identity.subject)' expired; send a new one with {\"type\": \"auth\", \"token\": ...}")
        }
        guard identity.rights.allows(action, endpoint) else {
            let reason = identity.subject == "anonymous" && identity.rights == .none
                ? "no credentials were presented (Authorization: Bearer, ?access_token= or an auth request)"
                : "the rights of '\(identity.subject)' do not include \(action.rawValue) on \(endpoint)"
            return (.forbidden, "not allowed to \(action.rawValue): \(reason)")
        }
        return nil
    }

    private func beginReplay(_ conn: cf_conn_id) -> Bool {
        sessions.withLock { table in
            guard let session = table[conn], session.replaying < Self.maxReplaysPerConnection else { return false }
            table[conn]?.replaying += 1
            return true
        }
    }

    private func endReplay(_ conn: cf_conn_id) {
        sessions.withLock { table in
            if let n = table[conn]?.replaying, n > 0 { table[conn]?.replaying = n - 1 }
        }
    }

    /// Tells the client a subscription did not come to be, if it is still
    /// that subscription (an unsubscribe meanwhile already answered it).
    private func fail(_ conn: cf_conn_id, endpoint: String, subscription: UInt64, _ code: ClientProtocol.ErrorCode,
                      _ message: String)
    {
        sessions.withLock { table in
            guard table[conn]?.endpoints[endpoint] == subscription else { return }
            table[conn]?.endpoints.removeValue(forKey: endpoint)
            fanout?.sendText(conn, ClientProtocol.error(code, message, endpoint: endpoint, id: nil))
        }
    }

    /// Drops a subscription that did not come to be (if it is still that one).
    private func forget(_ conn: cf_conn_id, endpoint: String, subscription: UInt64) {
        sessions.withLock { table in
            if table[conn]?.endpoints[endpoint] == subscription { table[conn]?.endpoints.removeValue(forKey: endpoint) }
        }
    }

    private func unsubscribe(_ conn: cf_conn_id, endpoint: String, id: JSONValue?, fanout: FanoutHandle) -> String {
        let canonical = (try? mapper.address(of: endpoint)).flatMap(canonicalName) ?? endpoint
        // Under the sessions lock, so a replay finishing now cannot subscribe after this.
        sessions.withLock { table in
            if table[conn]?.endpoints.removeValue(forKey: canonical) != nil { fanout.unsubscribe(conn, from: canonical) }
        }
        return ClientProtocol.unsubscribed(endpoint: canonical, id: id)
    }
}
