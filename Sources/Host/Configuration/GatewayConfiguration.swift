import ArgumentParser
import CFanout
import Foundation
import Logging
import StreamgatePluginAPI

/// The gateway's JSON configuration (documented in docs/configuration.md).
///
/// Every key is validated here or by the plugin that owns its section; an
/// unknown key is an error, and every error names the key, the bad value and
/// what was expected.
struct GatewayConfiguration {
    struct PluginChoice {
        /// The registered plugin name, e.g. `kafka`.
        let name: String
        /// The plugin's own `options` section, validated by its factory.
        let options: ConfigSection
        /// Dotted path of the choice, e.g. `source`, for error messages.
        let key: String
    }

    /// The file this configuration came from, for error messages.
    var file = ""
    // The fan-out's options (`listen`, `event_loops`, `io_uring`, `websocket`,
    // `echo`, part of `limits`): defaults from the C core, the one place they
    // are defined; `FanoutServer` copies them into `cf_server_config`.
    var host = String(cString: Self.fanoutDefaults.host)
    var port = Int(Self.fanoutDefaults.port)
    /// `listen.tls`: the listener serves wss:// with this PEM chain and key
    /// (reloaded on SIGHUP); nil: plain ws://.
    var tls: (certificateChain: String, privateKey: String)?
    var eventLoops = Int(Self.fanoutDefaults.loop_count)
    var ioUring = Self.fanoutDefaults.use_io_uring != 0
    var streamPath = String(cString: Self.fanoutDefaults.stream_path)
    var maxMessageBytes = Self.fanoutDefaults.max_message_bytes
    var maxOutputBytes = Self.fanoutDefaults.max_output_bytes
    var maxHeaderBytes = Self.fanoutDefaults.max_header_bytes
    var handshakeTimeoutMs = Int(Self.fanoutDefaults.handshake_timeout_ms)
    var closeTimeoutMs = Int(Self.fanoutDefaults.close_timeout_ms)
    var idleTimeoutMs = Int(Self.fanoutDefaults.idle_timeout_ms)
    /// Under overload a loop holds writes up to this long so frames share TCP segments (0 = never).
    var maxWriteDelayMs = Int(Self.fanoutDefaults.max_write_delay_ms)
    /// Writes are always held this long (fixed coalescing: less CPU, more latency).
    var minWriteDelayMs = Int(Self.fanoutDefaults.min_write_delay_ms)
    var echoPath: String?
    var echoMaxMessageBytes = Self.fanoutDefaults.echo_max_message_bytes
    var consoleEnabled = true
    var logLevel: Logger.Level = .info
    /// nil: text for people; else one JSON object or logfmt line per event.
    var logFormat: StructuredLogHandler.Format?
    var recovery = RecoveryConfiguration()
    var tokenExpiryWarningSeconds = 30
    var closeOnTokenExpiry = false
    var publishHeaders = true
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`); nil: none.
    var admin: (host: String, port: Int)?
    /// Forward records' W3C `traceparent` headers to clients in the delivery
    /// frame, and clients' on their publishes (`tracing.propagate`).
    var propagateTraceContext = false
    /// Spans of traced messages, exported over OTLP/HTTP (`tracing.export`); nil: none.
    var traceExport: TraceExportSettings?
    /// On SIGTERM, how long the node serves clients it told to move before it
    /// closes the rest (0: no drain, close every connection at once).
    var drainGracePeriodMs = 25_000
    /// The window over which the told clients spread their reconnections.
    var drainReconnectWithinMs = 5_000
    /// Plugin libraries to load before the plugins are built (paths).
    var pluginLibraries: [String] = []
    var maxConnections = Int(Self.fanoutDefaults.max_connections)
    var maxConnectionsPerAddress = Int(Self.fanoutDefaults.max_connections_per_address)
    var allowedOrigins: [String] = []
    var maxSubscriptionsPerConnection = 1_000
    var publishRatePerSecond = 100
    var publishBurst = 200
    /// Tried in order (`AuthorizerChain`): one object, or an array of them.
    var authorization: [PluginChoice]
    var mapping: PluginChoice
    var source: PluginChoice

    /// The C core's defaults (`cf_server_config_init`).
    private static var fanoutDefaults: cf_server_config {
        var defaults = cf_server_config()
        cf_server_config_init(&defaults)
        return defaults
    }

    /// Reads and validates `path`, or prints the problem and exits with status 2.
    static func loadOrExit(path: String) throws -> GatewayConfiguration {
        do {
            return try load(path: path)
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
    }

    static func load(path: String) throws(ConfigurationErrorInFile) -> GatewayConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationErrorInFile(file: path, message: "cannot read the file")
        }
        return try parse(data, file: path)
    }

    static func parse(_ data: Data, file: String) throws(ConfigurationErrorInFile) -> GatewayConfiguration {
        try build(decode(data, file: file), file: file)
    }

    /// The file's JSON (comments allowed), or its first syntax error.
    static func decode(_ data: Data, file: String) throws(ConfigurationErrorInFile) -> JSONValue {
        if let problem = JSONSyntaxLocator.firstProblem(in: Array(data)) {
            throw ConfigurationErrorInFile(file: file, message: "not valid JSON: \(problem)")
        }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(JSONSyntaxLocator.withoutComments(Array(data))))
        } catch {
            throw ConfigurationErrorInFile(file: file, message: "not valid JSON (\(Self.describe(error)))")
        }
    }

    /// The configuration a decoded file describes, or its first error.
    static func build(_ root: JSONValue, file: String) throws(ConfigurationErrorInFile) -> GatewayConfiguration {
        do {
            var configuration = try GatewayConfiguration(root: ConfigSection(path: "", value: root))
            configuration.file = file
            return configuration
        } catch {
            throw ConfigurationErrorInFile(file: file, error: error)
        }
    }

    init(root: ConfigSection) throws(ConfigurationError) {
        let listen = try root.section("listen")
        host = try listen.string("host", default: host)
        port = try listen.int("port", default: port, range: 0...65535)
        let tlsSection = try listen.section("tls")
        let chain = try tlsSection.string("certificate_chain")
        let key = try tlsSection.string("private_key")
        try tlsSection.finish()
        switch (chain, key) {
        case let (chain?, key?):
            var errstr = [CChar](repeating: 0, count: 512)
            guard cf_tls_check(chain, key, &errstr, errstr.count) == 0 else {
                throw ConfigurationError(key: "listen.tls", problem: String(cErrorBuffer: errstr))
            }
            tls = (chain, key)
        case (nil, nil): tls = nil
        case (nil, _?):
            throw ConfigurationError(key: "listen.tls.certificate_chain", value: nil, expected: "the PEM certificate chain's path (with listen.tls.private_key)")
        case (_?, nil):
            throw ConfigurationError(key: "listen.tls.private_key", value: nil, expected: "the PEM private key's path (with listen.tls.certificate_chain)")
        }
        try listen.finish()

        eventLoops = try root.int("event_loops", default: eventLoops, range: 0...64)
        ioUring = try root.bool("io_uring", default: ioUring)

        let websocket = try root.section("websocket")
        streamPath = try websocket.string("path", default: streamPath)
        guard streamPath.hasPrefix("/") else {
            throw ConfigurationError(key: "websocket.path", value: "\"\(streamPath)\"", expected: "a path starting with '/'")
        }
        maxMessageBytes = try websocket.int("max_message_bytes", default: maxMessageBytes, range: 125...(64 << 20))
        maxOutputBytes = try websocket.int("max_output_bytes", default: maxOutputBytes, range: 1024...(1 << 30))
        maxHeaderBytes = try websocket.int("max_header_bytes", default: maxHeaderBytes, range: 256...(1 << 20))
        handshakeTimeoutMs = try websocket.int("handshake_timeout_ms", default: handshakeTimeoutMs, range: 100...600_000)
        closeTimeoutMs = try websocket.int("close_timeout_ms", default: closeTimeoutMs, range: 100...600_000)
        idleTimeoutMs = try websocket.int("idle_timeout_ms", default: idleTimeoutMs, range: 0...86_400_000)
        if idleTimeoutMs > 0 && idleTimeoutMs < 1_000 {
            throw ConfigurationError(key: "websocket.idle_timeout_ms", value: "\(idleTimeoutMs)",
                                     expected: "0 (never) or at least 1000")
        }
        maxWriteDelayMs = try websocket.int("max_write_delay_ms", default: maxWriteDelayMs, range: 0...60_000)
        minWriteDelayMs = try websocket.int("min_write_delay_ms", default: minWriteDelayMs, range: 0...60_000)
        try websocket.finish()

        let echo = try root.section("echo")
        if try echo.bool("enabled", default: false) {
            let path = try echo.string("path", default: "/echo")
            guard path.hasPrefix("/"), path != streamPath else {
                throw ConfigurationError(
                    key: "echo.path", value: "\"\(path)\"", expected: "a path starting with '/', other than websocket.path")
            }
            echoPath = path
        } else {
            _ = echo.raw("path")
        }
        echoMaxMessageBytes = try echo.int("max_message_bytes", default: echoMaxMessageBytes, range: 125...(256 << 20))
        try echo.finish()

        let console = try root.section("console")
        consoleEnabled = try console.bool("enabled", default: true)
        try console.finish()

        let level = try root.string("log_level", default: "info")
        guard let parsed = Logger.Level(rawValue: level) else {
            throw ConfigurationError(
                key: "log_level", value: "\"\(level)\"",
                expected: "one of " + Logger.Level.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
        }
        logLevel = parsed
        let format = try root.string("log_format", default: "text")
        if format != "text" {
            guard let structured = StructuredLogHandler.Format(rawValue: format) else {
                throw ConfigurationError(key: "log_format", value: "\"\(format)\"", expected: "\"text\", \"json\" or \"logfmt\"")
            }
            logFormat = structured
        }

        recovery = try RecoveryConfiguration(section: root.section("recovery"))

        let sessions = try root.section("sessions")
        tokenExpiryWarningSeconds = try sessions.int("token_expiry_warning_seconds", default: 30, range: 0...86_400)
        let onExpiry = try sessions.string("on_token_expiry", default: "end_subscriptions")
        guard onExpiry == "end_subscriptions" || onExpiry == "close" else {
            throw ConfigurationError(key: "sessions.on_token_expiry", value: "\"\(onExpiry)\"",
                                     expected: "\"end_subscriptions\" or \"close\"")
        }
        closeOnTokenExpiry = onExpiry == "close"
        try sessions.finish()

        pluginLibraries = try root.stringArray("plugins") ?? []

        let limits = try root.section("limits")
        maxConnections = try limits.int("max_connections", default: maxConnections, range: 0...10_000_000)
        maxConnectionsPerAddress = try limits.int(
            "max_connections_per_address", default: maxConnectionsPerAddress, range: 0...10_000_000)
        allowedOrigins = try limits.stringArray("allowed_origins") ?? []
        for (i, origin) in allowedOrigins.enumerated() where origin.isEmpty || origin.contains("\n") {
            throw ConfigurationError(key: "limits.allowed_origins[\(i)]", value: "\"\(origin)\"",
                                     expected: "an Origin such as \"https://app.example.com\"")
        }
        maxSubscriptionsPerConnection = try limits.int(
            "max_subscriptions_per_connection", default: maxSubscriptionsPerConnection, range: 1...1_000_000)
        publishRatePerSecond = try limits.int("publish_rate_per_second", default: publishRatePerSecond, range: 1...1_000_000)
        publishBurst = try limits.int("publish_burst", default: publishBurst, range: 1...1_000_000)
        try limits.finish()

        let publish = try root.section("publish")
        publishHeaders = try publish.bool("headers", default: true)
        try publish.finish()

        let adminSection = try root.section("admin")
        let adminHost = try adminSection.string("host", default: "127.0.0.1")
        let adminPort = try adminSection.int("port", default: 9464, range: 0...65535)
        if try adminSection.bool("enabled", default: false) {
            guard adminPort != port || adminPort == 0 else {
                throw ConfigurationError(key: "admin.port", value: "\(adminPort)", expected: "a port other than listen.port")
            }
            admin = (adminHost, adminPort)
        }
        try adminSection.finish()

        let tracing = try root.section("tracing")
        propagateTraceContext = try tracing.bool("propagate", default: false)
        let export = try tracing.section("export")
        let endpoint = try export.string("endpoint")
        var settings = TraceExportSettings(endpoint: endpoint ?? "")
        settings.protocolName = try export.string("protocol", default: settings.protocolName)
        guard ["http/protobuf", "http/json"].contains(settings.protocolName) else {
            throw ConfigurationError(key: export.keyPath("protocol"), value: "\"\(settings.protocolName)\"",
                                     expected: "\"http/protobuf\" or \"http/json\"")
        }
        settings.serviceName = try export.string("service_name", default: settings.serviceName)
        settings.headers = try export.stringMap("headers")
        settings.scheduleDelayMs = try export.int("schedule_delay_ms", default: settings.scheduleDelayMs, range: 1...60_000)
        if let endpoint {
            guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://"), endpoint.count > 8 else {
                throw ConfigurationError(key: export.keyPath("endpoint"), value: "\"\(endpoint)\"",
                                         expected: "an OTLP/HTTP traces URL such as \"http://127.0.0.1:4318/v1/traces\"")
            }
            guard propagateTraceContext else {
                throw ConfigurationError(key: export.keyPath("endpoint"), value: "\"\(endpoint)\"",
                                         expected: "null while tracing.propagate is false: spans follow the trace context propagation carries")
            }
            traceExport = settings
        }
        try export.finish()
        try tracing.finish()

        let drain = try root.section("drain")
        drainGracePeriodMs = try drain.int("grace_period_ms", default: drainGracePeriodMs, range: 0...3_600_000)
        drainReconnectWithinMs = try drain.int(
            "reconnect_within_ms", default: min(drainReconnectWithinMs, drainGracePeriodMs), range: 0...3_600_000)
        if drainReconnectWithinMs > drainGracePeriodMs {
            throw ConfigurationError(
                key: "drain.reconnect_within_ms", value: "\(drainReconnectWithinMs)",
                expected: "at most drain.grace_period_ms (\(drainGracePeriodMs)): clients must have moved before the grace period ends")
        }
        try drain.finish()

        if case .array(let items)? = root.raw("authorization") {
            guard !items.isEmpty else {
                throw ConfigurationError(
                    key: "authorization", value: "[]", expected: "at least one {\"plugin\": ..., \"options\": {…}}")
            }
            authorization = try items.indices.map { i throws(ConfigurationError) in
                try Self.pluginChoice(
                    ConfigSection(path: "authorization", values: ["\(i)": items[i]]), "\(i)", defaultName: nil,
                    key: "authorization[\(i)]")
            }
        } else {
            authorization = [try Self.pluginChoice(root, "authorization", defaultName: "allow-all")]
        }
        mapping = try Self.pluginChoice(root, "mapping", defaultName: "topic-key")
        source = try Self.pluginChoice(root, "source", defaultName: nil)
        try root.finish()
    }

    /// Reads `{"plugin": NAME, "options": {...}}`.
    private static func pluginChoice(_ root: ConfigSection, _ key: String, defaultName: String?, key path: String? = nil)
        throws(ConfigurationError) -> PluginChoice
    {
        let path = path ?? root.keyPath(key)
        if defaultName == nil && !root.contains(key) {
            throw ConfigurationError(key: path, value: nil, expected: "an object such as {\"plugin\": \"kafka\", \"options\": {…}}")
        }
        let section = try ConfigSection(path: path, value: root.raw(key))
        let name: String
        if let defaultName {
            name = try section.string("plugin", default: defaultName)
        } else {
            name = try section.requiredString("plugin", expected: "the name of a registered plugin")
        }
        let options = try section.section("options")
        try section.finish()
        return PluginChoice(name: name, options: options, key: path)
    }

    private static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            return (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                ?? context.debugDescription
        }
        return "\(error)"
    }
}

/// A configuration problem, with the file it was found in.
struct ConfigurationErrorInFile: Error, CustomStringConvertible {
    let file: String
    let message: String
    /// The offending key's path, when the problem is one key's.
    let key: String?

    init(file: String, message: String) {
        self.file = file
        self.message = message
        key = nil
    }

    init(file: String, error: ConfigurationError) {
        self.file = file
        message = error.description
        key = error.key
    }

    var description: String { "\(file): \(message)" }
}
