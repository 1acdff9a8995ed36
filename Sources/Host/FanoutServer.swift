import CFanout
import Glibc
import StreamgatePluginAPI

/// The Swift face of the C hot path: creates, starts and stops a `cf_server`
/// and routes its callbacks to `ClientSessions`.
///
/// The callbacks are formed in a nonisolated static context and marked
/// @Sendable in the C header: they run on the C loop threads.
final class FanoutServer: @unchecked Sendable {
    private let server: OpaquePointer
    private let sessionsBox: Unmanaged<ClientSessions>
    private var tickBox: Unmanaged<CallbackBox>?
    private var watchBox: Unmanaged<CallbackBox>?
    private var watchedFD: Int32 = -1
    /// The thread-safe entry points, for the router and the sessions.
    let handle: FanoutHandle

    struct Settings {
        var host: String
        var port: Int
        var eventLoops: Int
        var ioUring: Bool
        var streamPath: String
        var echoPath: String?
        var maxMessageBytes: Int
        var echoMaxMessageBytes: Int
        var maxOutputBytes: Int
        var maxHeaderBytes: Int
        var handshakeTimeoutMs: Int
        var closeTimeoutMs: Int
        var idleTimeoutMs = 0
        var maxWriteDelayMs: Int
        var minWriteDelayMs: Int
        var maxConnections = 0
        var maxConnectionsPerAddress = 0
        var allowedOrigins: [String] = []
    }

    init(settings: Settings, sessions: ClientSessions) throws {
        let box = Unmanaged.passRetained(sessions)
        var config = cf_server_config()
        cf_server_config_init(&config)
        var errstr = [CChar](repeating: 0, count: 512)
        let origins = settings.allowedOrigins.isEmpty ? nil : settings.allowedOrigins.joined(separator: "\n")
        let created: OpaquePointer? = settings.host.withCString { host in
            settings.streamPath.withCString { streamPath in
                withOptionalCString(settings.echoPath) { echoPath in withOptionalCString(origins) { origins in
                    config.host = host
                    config.port = UInt16(settings.port)
                    config.loop_count = Int32(settings.eventLoops)
                    config.use_io_uring = settings.ioUring ? 1 : 0
                    config.stream_path = streamPath
                    config.echo_path = echoPath
                    config.max_message_bytes = settings.maxMessageBytes
                    config.echo_max_message_bytes = settings.echoMaxMessageBytes
                    config.max_output_bytes = settings.maxOutputBytes
                    config.max_header_bytes = settings.maxHeaderBytes
                    config.handshake_timeout_ms = UInt32(settings.handshakeTimeoutMs)
                    config.close_timeout_ms = UInt32(settings.closeTimeoutMs)
                    config.idle_timeout_ms = UInt32(settings.idleTimeoutMs)
                    config.max_write_delay_ms = UInt32(settings.maxWriteDelayMs)
                    config.min_write_delay_ms = UInt32(settings.minWriteDelayMs)
                    config.max_connections = UInt32(settings.maxConnections)
                    config.max_connections_per_address = UInt32(settings.maxConnectionsPerAddress)
                    config.allowed_origins = origins
                    return cf_server_create(&config, &errstr, errstr.count)
                } }
            }
        }
        guard let created else {
            box.release()
            throw FanoutError(message: String(cErrorBuffer: errstr))
        }
        sessionsBox = box
        server = created
        handle = FanoutHandle(server: created)
        sessions.attach(handle)
    }

    deinit {
        cf_server_destroy(server)
        sessionsBox.release()
        tickBox?.release()
        watchBox?.release()
        if watchedFD >= 0 { close(watchedFD) }  // the loops are joined: nobody reads it now
    }

    /// Runs `tick` every `intervalMicroseconds` on loop 0's own thread (see
    /// `TickingSource`). Call before `start`.
    func setTicker(intervalMicroseconds: Int, _ tick: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(CallbackBox(tick))
        tickBox = box
        cf_server_set_ticker(server, UInt32(intervalMicroseconds), { context in
            guard let context else { return }
            Unmanaged<CallbackBox>.fromOpaque(context).takeUnretainedValue().call()
        }, box.toOpaque())
    }

    /// Calls `ready` on loop 0's own thread whenever `eventFD` is signalled (see
    /// `SignallingSource`). The server owns the fd from now on and closes it
    /// after its loops stop. Once only, from one task.
    func watch(eventFD: Int32, _ ready: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(CallbackBox(ready))
        watchBox = box
        watchedFD = eventFD
        cf_server_watch_fd(server, eventFD, { context in
            guard let context else { return }
            Unmanaged<CallbackBox>.fromOpaque(context).takeUnretainedValue().call()
        }, box.toOpaque())
    }

    func unwatch() { cf_server_unwatch_fd(server) }

    /// Serves `body` at `path` for plain GET requests (e.g. the console page).
    func addStaticPage(path: String, contentType: String, body: String) throws {
        var errstr = [CChar](repeating: 0, count: 256)
        var body = body
        let rc = body.withUTF8 { bytes in
            cf_server_add_static(server, path, contentType, bytes.baseAddress, bytes.count, &errstr, errstr.count)
        }
        guard rc == 0 else { throw FanoutError(message: String(cErrorBuffer: errstr)) }
    }

    func start() throws {
        var errstr = [CChar](repeating: 0, count: 512)
        var callbacks = Self.callbacks(context: sessionsBox.toOpaque())
        guard cf_server_start(server, &callbacks, &errstr, errstr.count) == 0 else {
            throw FanoutError(message: String(cErrorBuffer: errstr))
        }
    }

    var port: Int { Int(cf_server_port(server)) }
    var loopCount: Int { Int(cf_server_loop_count(server)) }
    /// Loops whose writes go through io_uring (the others use sendmsg).
    var ioUringLoops: Int { Int(cf_server_io_uring_loops(server)) }

    /// Closes every connection with 1001 and joins the loop threads.
    func stop() { cf_server_stop(server) }

    func stats() -> cf_stats {
        var stats = cf_stats()
        cf_server_get_stats(server, &stats)
        return stats
    }

    private static func callbacks(context: UnsafeMutableRawPointer) -> cf_callbacks {
        var callbacks = cf_callbacks()
        callbacks.context = context
        callbacks.on_open = { context, conn, info in
            guard let context, let info else { return }
            let sessions = Unmanaged<ClientSessions>.fromOpaque(context).takeUnretainedValue()
            let i = info.pointee
            let apiKey = String(cString: i.api_key)
            sessions.opened(
                conn,
                info: ConnectionInfo(
                    remoteAddress: String(cString: i.remote_addr), query: String(cString: i.query),
                    authorization: String(cString: i.authorization), origin: String(cString: i.origin)),
                apiKey: apiKey.isEmpty ? nil : apiKey)
        }
        callbacks.on_message = { context, conn, isText, data, length in
            guard let context else { return }
            let sessions = Unmanaged<ClientSessions>.fromOpaque(context).takeUnretainedValue()
            sessions.received(conn, isText: isText != 0, bytes: UnsafeRawBufferPointer(start: data, count: length))
        }
        callbacks.on_close = { context, conn, code in
            guard let context else { return }
            Unmanaged<ClientSessions>.fromOpaque(context).takeUnretainedValue().closed(conn, code: code)
        }
        return callbacks
    }
}

/// The C server's thread-safe entry points (each posts to a loop's queue).
struct FanoutHandle: @unchecked Sendable {
    let server: OpaquePointer

    /// Fans frames built by `DeliveryFrame` out to their endpoints' subscribers,
    /// with one lock and at most one wake-up per loop.
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

    /// Sends one text message to one connection.
    func sendText(_ conn: cf_conn_id, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var payload: UnsafeMutablePointer<UInt8>?
            guard let frame = cf_frame_create(1, bytes.count, nil, 0, &payload) else { return }
            if bytes.count > 0 { payload!.update(from: bytes.baseAddress!, count: bytes.count) }
            cf_server_send(server, conn, frame)
        }
    }

    /// Sends one frame to one connection; consumes the caller's reference.
    func send(_ conn: cf_conn_id, frame: OpaquePointer) { cf_server_send(server, conn, frame) }

    func close(_ conn: cf_conn_id, code: UInt16, reason: String) { cf_server_close(server, conn, code, reason) }

    func setReady(_ ready: Bool) { cf_server_set_ready(server, ready ? 1 : 0) }
}

/// Holds a closure the C loop calls through a context pointer (released with the server).
private final class CallbackBox: Sendable {
    let call: @Sendable () -> Void
    init(_ call: @escaping @Sendable () -> Void) { self.call = call }
}

struct FanoutError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}

extension String {
    /// The NUL-terminated text a C function wrote into `buffer`.
    init(cErrorBuffer buffer: [CChar]) {
        self = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
