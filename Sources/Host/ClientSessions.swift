import CFanout
import StreamgatePluginAPI
import Synchronization

/// The control plane of client connections: what each connection is, and
/// what its subscribe / unsubscribe requests become.
///
/// Called on the C loop threads (one connection is always served by the same
/// loop). Every request is validated by the mapping plugin, checked against
/// the topics the source serves, and authorized before the loop subscribes
/// the connection; a refusal is an error frame and the connection stays open.
final class ClientSessions: @unchecked Sendable {
    private struct Session {
        let info: ConnectionInfo
        /// Each subscribed endpoint, with the token of that subscription (a
        /// replay finishing late checks it is still the same subscription).
        var endpoints: [String: UInt64] = [:]
        /// Resumes of this connection being read from the source now.
        var replaying = 0
    }

    private let mapper: any EndpointMapper
    private let authorizer: any Authorizer
    private let servedTopics: Set<String>
    private let maxSubscriptions: Int
    private let sessions = Mutex<[cf_conn_id: Session]>([:])
    private let nextSubscription = Atomic<UInt64>(1)
    /// Set once before the loops start (pthread_create orders these writes
    /// before every callback).
    nonisolated(unsafe) private var fanout: FanoutHandle?
    nonisolated(unsafe) private var cached: CachedFanout?
    nonisolated(unsafe) private var replayer: SourceReplayer?
    /// Rounds of reading from the source before a resume gives up (the cache
    /// may move on while a read runs).
    private static let maxFetchRounds = 4
    /// Reads from the source one connection may have running at once, so
    /// one client cannot fill the node's replay queue.
    static let maxReplaysPerConnection = 2

    init(mapper: any EndpointMapper, authorizer: any Authorizer, servedTopics: Set<String>,
         maxSubscriptions: Int = 1000)
    {
        self.mapper = mapper
        self.authorizer = authorizer
        self.servedTopics = servedTopics
        self.maxSubscriptions = maxSubscriptions
    }

    func attach(_ handle: FanoutHandle) { fanout = handle }

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
            self?.follow(outcome, conn: conn, endpoint: endpoint, subscription: subscription, gap: nil, rounds: 0, fetched: [], bytes: 0)
        }
    }

    func opened(_ conn: cf_conn_id, info: ConnectionInfo) {
        sessions.withLock { $0[conn] = Session(info: info) }
        fanout?.sendText(conn, ClientProtocol.welcome())
    }

    func closed(_ conn: cf_conn_id, code: UInt16) {
        _ = sessions.withLock { $0.removeValue(forKey: conn) }
    }

    func received(_ conn: cf_conn_id, isText: Bool, bytes: UnsafeRawBufferPointer) {
        guard let fanout else { return }
        guard isText else {
            fanout.sendText(conn, ClientProtocol.error(
                .unsupported, "binary messages are not part of protocol v1; send JSON text requests", id: nil))
            return
        }
        do {
            switch try ClientProtocol.parse(bytes) {
            case .subscribe(let endpoint, let id, let options):
                if let reply = subscribe(conn, endpoint: endpoint, id: id, options: options, fanout: fanout) {
                    fanout.sendText(conn, reply)
                }
            case .unsubscribe(let endpoint, let id):
                fanout.sendText(conn, unsubscribe(conn, endpoint: endpoint, id: id, fanout: fanout))
            }
        } catch {
            fanout.sendText(conn, ClientProtocol.error(error.code, error.message, id: error.id))
        }
    }

    /// Validates, authorizes and subscribes. Returns the reply still to send,
    /// or nil when it was sent: an acknowledgement is queued before the loop
    /// subscribes, so it precedes every delivery.
    private func subscribe(_ conn: cf_conn_id, endpoint: String, id: JSONValue?, options: SubscribeOptions,
                           fanout: FanoutHandle) -> String?
    {
        let address: KafkaAddress
        do {
            address = try mapper.address(of: endpoint)
        } catch {
            return ClientProtocol.error(.invalidEndpoint, error.reason, endpoint: endpoint, id: id)
        }
        guard servedTopics.contains(address.topic) else {
            return ClientProtocol.error(
                .unknownTopic, "topic '\(address.topic)' is not served by this gateway", endpoint: endpoint, id: id)
        }
        // Deliveries are addressed by the mapper's own name for (topic, key).
        var key = address.key
        guard let canonical = key.withUTF8({ mapper.endpoint(topic: address.topic, key: UnsafeRawBufferPointer($0)) })
        else {
            return ClientProtocol.error(.invalidEndpoint, "endpoint maps to no deliverable key", endpoint: endpoint, id: id)
        }
        guard let info = sessions.withLock({ $0[conn]?.info }) else { return nil }
        switch authorizer.authorize(AuthorizationRequest(action: .subscribe, endpoint: canonical, connection: info)) {
        case .allow:
            break
        case .deny(let reason):
            return ClientProtocol.error(.forbidden, "not allowed to subscribe: \(reason)", endpoint: endpoint, id: id)
        case .abstain:
            return ClientProtocol.error(.forbidden, "not allowed to subscribe: no authorizer allowed it", endpoint: endpoint, id: id)
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
        follow(outcome, conn: conn, endpoint: canonical, subscription: subscription, gap: nil, rounds: 0, fetched: [],
               bytes: 0)
        return nil
    }

    /// Carries a subscription on after the cache's answer: reads from the
    /// source what the cache no longer has, or forgets a refused one.
    private func follow(_ outcome: CachedFanout.Outcome, conn: cf_conn_id, endpoint: String, subscription: UInt64,
                        gap: ClosedRange<Int64>?, rounds: Int, fetched: [OpaquePointer], bytes: Int)
    {
        guard let cached, let fanout else { return }
        switch outcome {
        case .subscribed, .waiting:
            return
        case .refused:
            forget(conn, endpoint: endpoint, subscription: subscription)
        case .fetch(let request):
            guard let replayer else {
                follow(cached.completeWithoutSource(conn, endpoint: endpoint, subscription: subscription, request: request),
                       conn: conn, endpoint: endpoint, subscription: subscription, gap: nil, rounds: 0, fetched: [], bytes: 0)
                return
            }
            guard rounds < Self.maxFetchRounds else {
                endReplay(conn)  // rounds > 0 here: the first round counted this replay
                fetched.forEach { cf_frame_release($0) }
                fail(conn, endpoint: endpoint, subscription: subscription,
                     "this node's cache moved on faster than the replay could read; resume again")
                return
            }
            if rounds == 0 && !beginReplay(conn) {
                fail(conn, endpoint: endpoint, subscription: subscription,
                     "this connection already has \(Self.maxReplaysPerConnection) resumes being read from the source; resume again when they are done")
                return
            }
            let held = fetched.map { UInt(bitPattern: $0) }  // Sendable across the replay thread
            let accepted = replayer.fetch(request, endpoint: endpoint) { [self] result in
                let fetched = held.map { OpaquePointer(bitPattern: $0)! }
                var done = true
                defer { if done { endReplay(conn) } }
                switch result {
                case .failure(let error):
                    fetched.forEach { cf_frame_release($0) }
                    fail(conn, endpoint: endpoint, subscription: subscription, "cannot read the missed messages from the source: \(error.reason)")
                case .success(let read):
                    let frames = fetched + read.frames.map { OpaquePointer(bitPattern: $0)! }
                    if read.truncated {
                        frames.forEach { cf_frame_release($0) }
                        fanout.sendText(conn, ClientProtocol.error(
                            .replayTooLarge,
                            "more than recovery.replay.max_messages messages were missed; subscribe without \"from\" to go on live",
                            endpoint: endpoint, id: nil))
                        forget(conn, endpoint: endpoint, subscription: subscription)
                        return
                    }
                    var lost = gap
                    if rounds == 0, case .complete(let first) = read.outcome, first > request.fromOffset {
                        lost = request.fromOffset...(first - 1)
                    }
                    let next = cached.completeFetch(
                        conn, endpoint: endpoint, subscription: subscription, request: request, outcome: read.outcome,
                        fetched: frames, fetchedBytes: bytes + read.bytes, lost: lost)
                    if case .fetch = next { done = false }  // the next round carries the count on
                    follow(next, conn: conn, endpoint: endpoint, subscription: subscription, gap: lost,
                           rounds: rounds + 1, fetched: frames, bytes: bytes + read.bytes)
                }
            }
            if !accepted {
                endReplay(conn)
                fetched.forEach { cf_frame_release($0) }
                fail(conn, endpoint: endpoint, subscription: subscription, "too many replays are waiting on this node; resume again shortly")
            }
        }
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

    private func fail(_ conn: cf_conn_id, endpoint: String, subscription: UInt64, _ message: String) {
        fanout?.sendText(conn, ClientProtocol.error(.replayFailed, message, endpoint: endpoint, id: nil))
        forget(conn, endpoint: endpoint, subscription: subscription)
    }

    /// Drops a subscription that did not come to be (if it is still that one).
    private func forget(_ conn: cf_conn_id, endpoint: String, subscription: UInt64) {
        sessions.withLock { table in
            if table[conn]?.endpoints[endpoint] == subscription { table[conn]?.endpoints.removeValue(forKey: endpoint) }
        }
    }

    private func unsubscribe(_ conn: cf_conn_id, endpoint: String, id: JSONValue?, fanout: FanoutHandle) -> String {
        var canonical = endpoint
        if let address = try? mapper.address(of: endpoint) {
            var key = address.key
            canonical = key.withUTF8 { mapper.endpoint(topic: address.topic, key: UnsafeRawBufferPointer($0)) } ?? endpoint
        }
        // Under the sessions lock, so a replay finishing now cannot subscribe after this.
        sessions.withLock { table in
            if table[conn]?.endpoints.removeValue(forKey: canonical) != nil { fanout.unsubscribe(conn, from: canonical) }
        }
        return ClientProtocol.unsubscribed(endpoint: canonical, id: id)
    }
}
