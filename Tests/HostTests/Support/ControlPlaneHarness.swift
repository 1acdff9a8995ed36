import CFanout
import Foundation
import Logging
import StreamgatePluginAPI
import StreamgatePlugins
import Testing

@testable import streamgate

/// The control plane exactly as `Gateway` builds it (`ControlPlane`), with a
/// `FakeFanout` for the C loops, a `TokenTableAuthorizer`, the `topic-key`
/// mapper and a `MemoryLogSource`; records enter through a real `MessageRouter`.
struct ControlPlaneHarness {
    let fanout = FakeFanout()
    let source = MemoryLogSource()
    let authorizer: TokenTableAuthorizer
    let control: ControlPlane
    let router: MessageRouter

    init(tokens: [String: Identity] = ["all": Identity(subject: "all", rights: .all, expiresAt: nil)],
         settings: ControlPlane.Settings = ControlPlane.Settings())
    {
        authorizer = TokenTableAuthorizer(tokens)
        control = ControlPlane(
            settings: settings, mapper: TopicKeyMapper(), authorizers: AuthorizerChain(authorizers: [("tokens", authorizer)]),
            source: source, fanout: fanout)
        router = MessageRouter(mapper: TopicKeyMapper(), fanout: control.resumes, readiness: fanout,
                               logger: Logger(label: "test"))
        router.partitionStarted(PartitionStart(topic: MemoryLogSource.topic, partition: 0, epoch: MemoryLogSource.epoch,
                                               offset: 0))
    }

    /// Opens a connection presenting `token` (none: anonymous).
    func open(_ conn: cf_conn_id, token: String?) {
        control.connections.opened(
            conn, info: ConnectionInfo(remoteAddress: "127.0.0.1:\(conn)", query: "",
                                       authorization: token.map { "Bearer \($0)" } ?? "", origin: ""),
            apiKey: nil)
    }

    /// Opens a connection and waits for its `welcome`.
    func connect(_ conn: cf_conn_id, token: String? = "all") async throws {
        open(conn, token: token)
        try await waitUntil("welcome") { fanout.texts(conn).contains { $0.contains("\"welcome\"") } }
    }

    func send(_ conn: cf_conn_id, _ json: String) {
        var json = json
        json.withUTF8 { control.connections.received(conn, isText: true, bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Appends records to the partition and routes them live, as one batch.
    @discardableResult
    func produce(_ keys: [String]) -> [MemoryLogSource.Record] {
        let records = keys.map { source.append(key: $0) }
        MemoryLogSource.route(records, into: router)
        return records
    }

    /// Waits (up to 5 s) for `condition`, then expects it.
    func waitUntil(_ what: String, _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        for _ in 0..<5_000 where !condition() { try await Task.sleep(for: .milliseconds(1)) }
        #expect(condition(), "waited 5 s for \(what)", sourceLocation: sourceLocation)
    }

    /// The JSON objects `conn` received, decoded.
    func replies(_ conn: cf_conn_id) -> [[String: Any]] {
        fanout.texts(conn).compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    func replies(_ conn: cf_conn_id, type: String) -> [[String: Any]] {
        replies(conn).filter { $0["type"] as? String == type }
    }
}
