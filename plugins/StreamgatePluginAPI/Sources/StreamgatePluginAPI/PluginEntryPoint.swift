/// How a plugin library loaded at run time meets the host.
///
/// A plugin package builds a dynamic library (depending on this package's
/// dynamic product) that exports one C symbol:
///
///     @_cdecl("streamgate_plugin_register")
///     public func streamgatePluginRegister(_ entry: UnsafeMutableRawPointer) -> Int32 {
///         PluginEntryPoint.register(entry) { registrar in
///             registrar.register(authorizer: MyAuthorizerFactory())
///         }
///     }
///
/// The host `dlopen`s the file named in its configuration (`plugins`),
/// calls the symbol with a `PluginEntryPoint`, and refuses the file — naming
/// it — when the plugin was built against another API version (see
/// `PluginAPIVersion`); a plugin of another major registers nothing.
public final class PluginEntryPoint: @unchecked Sendable {
    /// The C symbol every plugin library exports.
    public static let symbol = "streamgate_plugin_register"

    let registrar: any PluginRegistrar
    /// The host's API major version.
    let hostMajor: Int

    public init(registrar: any PluginRegistrar, hostMajor: Int) {
        self.registrar = registrar
        self.hostMajor = hostMajor
    }

    /// Called from a plugin's exported function: registers the plugin's
    /// factories if its API major version is the host's, and returns the
    /// version it was built against (`PluginAPIVersion` is inlined into it).
    @inlinable
    public static func register(_ entry: UnsafeMutableRawPointer, _ body: (any PluginRegistrar) -> Void) -> Int32 {
        let point = Unmanaged<PluginEntryPoint>.fromOpaque(entry).takeUnretainedValue()
        if point.hostMajorVersion == PluginAPIVersion.major { body(point.pluginRegistrar) }
        return Int32(PluginAPIVersion.major * 1000 + PluginAPIVersion.minor)
    }

    public var hostMajorVersion: Int { hostMajor }
    public var pluginRegistrar: any PluginRegistrar { registrar }
}
