/// Severity of a plugin log line; the host maps it onto its logging backend.
public enum PluginLogLevel: Int, Sendable, Comparable {
    case debug, info, notice, warning, error

    public static func < (a: PluginLogLevel, b: PluginLogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// Where plugins log. A protocol of the plugin API (not swift-log itself) so a
/// plugin loaded at run time never depends on the host's copy of a logging
/// library.
public protocol PluginLogger: Sendable {
    func log(_ level: PluginLogLevel, _ message: String)
}

/// What the host gives a plugin factory when it builds a plugin.
public struct PluginContext: Sendable {
    public let logger: any PluginLogger

    public init(logger: any PluginLogger) {
        self.logger = logger
    }
}
