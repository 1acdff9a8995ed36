import Logging
import StreamgatePluginAPI

/// Logging is bootstrapped exactly once, at start-up, to standard error:
/// as text for people (swift-log's format), or one JSON object or logfmt
/// line per event for log pipelines (`log_format`).
enum LogSetup {
    static func bootstrap(level: Logger.Level, format: StructuredLogHandler.Format? = nil) {
        LoggingSystem.bootstrap { label in
            if let format { return StructuredLogHandler(label: label, format: format, level: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// Gives plugins a logger without exposing swift-log through the plugin API.
struct SwiftLogPluginLogger: PluginLogger {
    let logger: Logger

    init(plugin: String) {
        logger = Logger(label: "streamgate.plugin.\(plugin)")
    }

    func log(_ level: PluginLogLevel, _ message: String) {
        let mapped: Logger.Level
        switch level {
        case .debug: mapped = .debug
        case .info: mapped = .info
        case .notice: mapped = .notice
        case .warning: mapped = .warning
        case .error: mapped = .error
        }
        logger.log(level: mapped, "\(message)")
    }
}
