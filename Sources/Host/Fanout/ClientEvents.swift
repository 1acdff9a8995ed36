import CFanout
import StreamgatePluginAPI

/// What the C loops tell the host about client connections (implemented by
/// `ClientConnections`). Called on the loop thread that owns the connection:
/// one connection's events never run concurrently, and never out of order.
protocol ClientEvents: AnyObject, Sendable {
    /// The connection completed its WebSocket handshake.
    func opened(_ conn: cf_conn_id, info: ConnectionInfo, apiKey: String?)
    /// One complete client message; the bytes are valid only during the call.
    func received(_ conn: cf_conn_id, isText: Bool, bytes: UnsafeRawBufferPointer)
    /// The connection is gone (`code`: the close code sent or received, 1006 if none).
    func closed(_ conn: cf_conn_id, code: UInt16)
}
