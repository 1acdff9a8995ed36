import CFanout
import StreamgatePluginAPI

/// The control plane's entry point: what the C loops report about client
/// connections becomes sessions and requests.
///
/// A new connection is authenticated first (`ConnectionAuthenticator`); the
/// requests it sends meanwhile wait, in order and bounded, and are handled
/// once `welcome` is queued. Each request then goes to the part that owns it:
/// `Subscriptions`, `PublishGate`, or the authenticator (`auth`). Called on
/// the loop thread that owns the connection (and, for waiting requests, on
/// the task that authenticated it).
final class ClientConnections: ClientEvents {
    /// Requests a connection may send before its authentication ends.
    static let maxWaitingRequests = 64

    private let table: SessionTable
    private let authenticator: ConnectionAuthenticator
    private let subscriptions: Subscriptions
    private let publishes: PublishGate
    private let fanout: any FanoutPort

    init(table: SessionTable, authenticator: ConnectionAuthenticator, subscriptions: Subscriptions,
         publishes: PublishGate, fanout: any FanoutPort)
    {
        self.table = table
        self.authenticator = authenticator
        self.subscriptions = subscriptions
        self.publishes = publishes
        self.fanout = fanout
    }

    func opened(_ conn: cf_conn_id, info: ConnectionInfo, apiKey: String?) {
        table.open(conn, credentials: Credentials(token: AuthorizerChain.token(of: info), apiKey: apiKey, connection: info))
        Task { [self] in
            guard await authenticator.authenticate(conn) else { return }
            handleWaitingRequests(conn)
        }
    }

    func closed(_ conn: cf_conn_id, code: UInt16) {
        table.close(conn)
    }

    func received(_ conn: cf_conn_id, isText: Bool, bytes: UnsafeRawBufferPointer) {
        guard isText else {
            return fanout.sendText(conn, ClientProtocol.error(
                .unsupported, "binary messages are not part of protocol v1; send JSON text requests", id: nil))
        }
        // Before the identity is known, requests wait (in order, bounded).
        let waited = table.withSession(conn) { session -> Bool? in
            guard var waiting = session.waiting else { return false }
            guard waiting.count < Self.maxWaitingRequests else { return nil }
            waiting.append([UInt8](bytes))
            session.waiting = waiting
            return true
        }
        switch waited {
        case true??: return
        case .some(nil):
            fanout.sendText(conn, ClientProtocol.error(
                .tooManyRequests, "more than \(Self.maxWaitingRequests) requests before authentication ended", id: nil))
            fanout.close(conn, code: UInt16(CF_CLOSE_POLICY_VIOLATION), reason: "too many requests")
        case false??, nil:
            handle(conn, bytes: bytes)
        }
    }

    /// Handles the requests that waited for the first authentication, in
    /// order; new ones keep queueing behind them until the queue is empty.
    private func handleWaitingRequests(_ conn: cf_conn_id) {
        while let next = table.withSession(conn, { session -> [UInt8]? in
            guard var waiting = session.waiting, !waiting.isEmpty else {
                session.waiting = nil
                return nil
            }
            let first = waiting.removeFirst()
            session.waiting = waiting
            return first
        }), let request = next {
            request.withUnsafeBytes { handle(conn, bytes: $0) }
        }
    }

    private func handle(_ conn: cf_conn_id, bytes: UnsafeRawBufferPointer) {
        do {
            switch try ClientProtocol.parse(bytes) {
            case .subscribe(let endpoint, let id, let options):
                subscriptions.subscribe(conn, endpoint: endpoint, id: id, options: options)
            case .unsubscribe(let endpoint, let id):
                subscriptions.unsubscribe(conn, endpoint: endpoint, id: id)
            case .publish(let endpoint, let payload, let traceParent, let id):
                publishes.publish(conn, endpoint: endpoint, payload: payload, traceParent: traceParent, id: id)
            case .auth(let token, let id):
                Task { [authenticator] in await authenticator.refresh(conn, token: token, id: id) }
            case .ping(let id):
                fanout.sendText(conn, ClientProtocol.pong(id: id))
            }
        } catch {
            fanout.sendText(conn, ClientProtocol.error(error.code, error.message, id: error.id))
        }
    }
}
