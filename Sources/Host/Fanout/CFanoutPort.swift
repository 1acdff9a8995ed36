import CFanout

/// The fan-out port of a `cf_server`: each call is one of the server's
/// thread-safe entry points (which post to a loop's command queue).
///
/// @unchecked Sendable: it holds only the server's pointer, whose entry
/// points are thread-safe; `FanoutServer` keeps the server alive.
struct CFanoutPort: FanoutPort, @unchecked Sendable {
    let server: OpaquePointer

    func publish(batch frames: UnsafeBufferPointer<OpaquePointer?>) {
        cf_server_publish_batch(server, frames.baseAddress, frames.count)
    }

    func subscribe(_ conn: cf_conn_id, to endpoint: String) {
        var endpoint = endpoint
        endpoint.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { cf_server_subscribe(server, conn, $0.baseAddress, $0.count) }
        }
    }

    func unsubscribe(_ conn: cf_conn_id, from endpoint: String) {
        var endpoint = endpoint
        endpoint.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { cf_server_unsubscribe(server, conn, $0.baseAddress, $0.count) }
        }
    }

    func sendText(_ conn: cf_conn_id, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var payload: UnsafeMutablePointer<UInt8>?
            guard let frame = cf_frame_create(1, bytes.count, nil, 0, &payload) else { return }
            if bytes.count > 0 { payload!.update(from: bytes.baseAddress!, count: bytes.count) }
            cf_server_send(server, conn, frame)
        }
    }

    func send(_ conn: cf_conn_id, frame: OpaquePointer) { cf_server_send(server, conn, frame) }

    func close(_ conn: cf_conn_id, code: UInt16, reason: String) { cf_server_close(server, conn, code, reason) }

    func setReady(_ ready: Bool) { cf_server_set_ready(server, ready ? 1 : 0) }
}
