import Logging
import StreamgatePluginAPI

/// Logging is bootstrapped exactly once, at start-up, to standard error.
enum LogSetup {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
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
