import CFanout
import Glibc
import StreamgatePluginAPI

/// The Swift face of the C hot path: creates, starts and stops a `cf_server`
/// and routes its callbacks to the host's `ClientEvents`.
///
/// The server is created from the configuration (nothing listens yet), so the
/// control plane can be built against its `port`; `start` then hands the C
/// loops their callbacks. The callbacks are formed in a nonisolated static
/// context and marked @Sendable in the C header: they run on the loop threads.
///
/// @unchecked Sendable: the server pointer's entry points are thread-safe;
/// the boxes and the watched fd are set once, before or while the loops run,
/// from the one task that owns the server's lifecycle (`Gateway`).
final class FanoutServer: @unchecked Sendable {
    private let server: OpaquePointer
    private var eventsBox: Unmanaged<EventsBox>?
    private var tickBox: Unmanaged<CallbackBox>?
    private var watchBox: Unmanaged<CallbackBox>?
    private var watchedFD: Int32 = -1
    /// The thread-safe entry points, for the router and the control plane.
    let port: any FanoutPort

    /// Creates the server from the gateway's configuration: `cf_server_config`
    /// is filled here, field by field, from the validated values (the ranges
    /// live in `GatewayConfiguration`; C checks only what its memory needs).
    init(configuration c: GatewayConfiguration) throws {
        var config = cf_server_config()
        cf_server_config_init(&config)
        var errstr = [CChar](repeating: 0, count: 512)
        let origins = c.allowedOrigins.isEmpty ? nil : c.allowedOrigins.joined(separator: "\n")
        let created: OpaquePointer? = c.host.withCString { host in
            c.streamPath.withCString { streamPath in
                withOptionalCString(c.echoPath) { echoPath in withOptionalCString(origins) { origins in
                withOptionalCString(c.tls?.certificateChain) { chain in withOptionalCString(c.tls?.privateKey) { key in
                    config.tls_certificate_file = chain
                    config.tls_key_file = key
                    config.host = host
                    config.port = UInt16(c.port)
                    config.loop_count = Int32(c.eventLoops)
                    config.use_io_uring = c.ioUring ? 1 : 0
                    config.stream_path = streamPath
                    config.echo_path = echoPath
                    config.max_message_bytes = c.maxMessageBytes
                    config.echo_max_message_bytes = c.echoMaxMessageBytes
                    config.max_output_bytes = c.maxOutputBytes
                    config.max_header_bytes = c.maxHeaderBytes
                    config.handshake_timeout_ms = UInt32(c.handshakeTimeoutMs)
                    config.close_timeout_ms = UInt32(c.closeTimeoutMs)
                    config.idle_timeout_ms = UInt32(c.idleTimeoutMs)
                    config.max_write_delay_ms = UInt32(c.maxWriteDelayMs)
                    config.min_write_delay_ms = UInt32(c.minWriteDelayMs)
                    config.max_connections = UInt32(c.maxConnections)
                    config.max_connections_per_address = UInt32(c.maxConnectionsPerAddress)
                    config.allowed_origins = origins
                    return cf_server_create(&config, &errstr, errstr.count)
                } } } }
            }
        }
        guard let created else { throw FanoutError(message: String(cErrorBuffer: errstr)) }
        server = created
        port = CFanoutPort(server: created)
    }

    deinit {
        cf_server_destroy(server)
        eventsBox?.release()
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

    /// Listens, and runs the loops until `stop`, telling `events` about
    /// client connections. Returns once every loop runs. Once only.
    func start(events: any ClientEvents) throws {
        let box = Unmanaged.passRetained(EventsBox(events))
        eventsBox = box
        var errstr = [CChar](repeating: 0, count: 512)
        var callbacks = Self.callbacks(context: box.toOpaque())
        guard cf_server_start(server, &callbacks, &errstr, errstr.count) == 0 else {
            throw FanoutError(message: String(cErrorBuffer: errstr))
        }
    }

    /// The bound port (after `start`; the configured one may be 0).
    var boundPort: Int { Int(cf_server_port(server)) }
    var loopCount: Int { Int(cf_server_loop_count(server)) }
    /// Loops whose writes go through io_uring (the others use sendmsg).
    var ioUringLoops: Int { Int(cf_server_io_uring_loops(server)) }

    /// Closes every connection with 1001 and joins the loop threads.
    func stop() { cf_server_stop(server) }

    /// Refuses new connections (503) and readiness (`/readyz` 503), and sends
    /// `notice` as a text message to every open connection (`DrainService`).
    func drain(notice: String) {
        var notice = notice
        notice.withUTF8 { bytes in
            var payload: UnsafeMutablePointer<UInt8>?
            guard let frame = cf_frame_create(1, bytes.count, nil, 0, &payload), let payload else { return }
            payload.update(from: bytes.baseAddress!, count: bytes.count)
            cf_server_drain(server, frame)
        }
    }

    var isDraining: Bool { cf_server_is_draining(server) != 0 }

    /// Loads the TLS certificate chain and key again (SIGHUP): new connections
    /// use them, open ones keep theirs; on failure the old ones stay.
    func reloadTLS() throws {
        var errstr = [CChar](repeating: 0, count: 512)
        guard cf_server_reload_tls(server, &errstr, errstr.count) == 0 else {
            throw FanoutError(message: String(cErrorBuffer: errstr))
        }
    }

    /// One loop's queue depth, commands run and histograms (read without locks).
    func loopStats(_ index: Int) -> cf_loop_stats {
        var stats = cf_loop_stats()
        cf_server_get_loop_stats(server, Int32(index), &stats)
        return stats
    }

    func stats() -> cf_stats {
        var stats = cf_stats()
        cf_server_get_stats(server, &stats)
        return stats
    }

    /// The upgrade request's header fields, copied out of the head (valid
    /// only during `on_open`); bytes that are not UTF-8 become U+FFFD. The
    /// WebSocket handshake's own fields are left out: they say nothing about
    /// the client, and every session keeps its headers as long as it lives.
    private static func headers(_ fields: UnsafePointer<cf_http_header>?, count: Int) -> RequestHeaders {
        guard let fields else { return RequestHeaders() }
        func text(_ start: UnsafePointer<CChar>, _ length: Int) -> String {
            start.withMemoryRebound(to: UInt8.self, capacity: length) {
                String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
            }
        }
        return RequestHeaders(UnsafeBufferPointer(start: fields, count: count).compactMap { field in
            let name = text(field.name, field.name_length)
            guard !handshakeFields.contains(name.lowercased()) else { return nil }
            return RequestHeaders.Field(name: name, value: text(field.value, field.value_length))
        })
    }

    /// Fields only the handshake uses (`Sec-WebSocket-Protocol` is kept:
    /// some clients carry credentials in it).
    private static let handshakeFields: Set<String> = [
        "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
    ]

    private static func callbacks(context: UnsafeMutableRawPointer) -> cf_callbacks {
        var callbacks = cf_callbacks()
        callbacks.context = context
        callbacks.on_open = { context, conn, info in
            guard let context, let info else { return }
            let events = Unmanaged<EventsBox>.fromOpaque(context).takeUnretainedValue().events
            let i = info.pointee
            let apiKey = String(cString: i.api_key)
            events.opened(
                conn,
                info: ConnectionInfo(
                    remoteAddress: String(cString: i.remote_addr), query: String(cString: i.query),
                    authorization: String(cString: i.authorization), origin: String(cString: i.origin),
                    headers: FanoutServer.headers(i.headers, count: i.header_count)),
                apiKey: apiKey.isEmpty ? nil : apiKey)
        }
        callbacks.on_message = { context, conn, isText, data, length in
            guard let context else { return }
            let events = Unmanaged<EventsBox>.fromOpaque(context).takeUnretainedValue().events
            events.received(conn, isText: isText != 0, bytes: UnsafeRawBufferPointer(start: data, count: length))
        }
        callbacks.on_close = { context, conn, code in
            guard let context else { return }
            Unmanaged<EventsBox>.fromOpaque(context).takeUnretainedValue().events.closed(conn, code: code)
        }
        return callbacks
    }
}

/// Holds the host's connection events for the C callbacks' context pointer.
private final class EventsBox: Sendable {
    let events: any ClientEvents
    init(_ events: any ClientEvents) { self.events = events }
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
