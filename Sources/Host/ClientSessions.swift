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
        var endpoints: Set<String> = []
    }

    private let mapper: any EndpointMapper
    private let authorizer: any Authorizer
    private let servedTopics: Set<String>
    private let maxSubscriptions: Int
    private let sessions = Mutex<[cf_conn_id: Session]>([:])
    /// Set once by `FanoutServer` before its loops start (pthread_create
    /// orders that write before every callback).
    nonisolated(unsafe) private var fanout: FanoutHandle?

    init(mapper: any EndpointMapper, authorizer: any Authorizer, servedTopics: Set<String>,
         maxSubscriptions: Int = 1000)
    {
        self.mapper = mapper
        self.authorizer = authorizer
        self.servedTopics = servedTopics
        self.maxSubscriptions = maxSubscriptions
    }

    func attach(_ handle: FanoutHandle) { fanout = handle }

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
            case .subscribe(let endpoint, let id):
                if let reply = subscribe(conn, endpoint: endpoint, id: id, fanout: fanout) {
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
    private func subscribe(_ conn: cf_conn_id, endpoint: String, id: JSONValue?, fanout: FanoutHandle) -> String? {
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
        let added = sessions.withLock { table -> Bool? in
            guard var session = table[conn] else { return nil }
            if session.endpoints.contains(canonical) { return false }
            guard session.endpoints.count < maxSubscriptions else { return nil }
            session.endpoints.insert(canonical)
            table[conn] = session
            return true
        }
        guard let added else {
            return ClientProtocol.error(
                .tooManySubscriptions, "at most \(maxSubscriptions) subscriptions per connection", endpoint: endpoint, id: id)
        }
        let reply = ClientProtocol.subscribed(endpoint: canonical, id: id)
        if added {
            fanout.sendText(conn, reply)
            fanout.subscribe(conn, to: canonical)
            return nil
        }
        return reply
    }

    private func unsubscribe(_ conn: cf_conn_id, endpoint: String, id: JSONValue?, fanout: FanoutHandle) -> String {
        var canonical = endpoint
        if let address = try? mapper.address(of: endpoint) {
            var key = address.key
            canonical = key.withUTF8 { mapper.endpoint(topic: address.topic, key: UnsafeRawBufferPointer($0)) } ?? endpoint
        }
        let removed = sessions.withLock { $0[conn]?.endpoints.remove(canonical) != nil }
        if removed { fanout.unsubscribe(conn, from: canonical) }
        return ClientProtocol.unsubscribed(endpoint: canonical, id: id)
    }
}
