import Foundation
import StreamgatePluginAPI

/// Loads plugin libraries named in the configuration (`plugins`) into the
/// registry, before any plugin is built: an integrator's authorizer, mapper
/// or source then is chosen by name like a built-in one, without rebuilding
/// the gateway (docs/plugins.md). Libraries stay loaded for the process.
enum PluginLoader {
    private typealias Entry = @convention(c) (UnsafeMutableRawPointer) -> Int32

    static func load(_ paths: [String], into registry: PluginRegistry) throws(ConfigurationError) {
        for (i, path) in paths.enumerated() {
            let key = "plugins[\(i)]"
            guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
                let why = dlerror().map { String(cString: $0) } ?? "unknown error"
                throw ConfigurationError(key: key, problem: "cannot load plugin \(path): \(why)")
            }
            guard let symbol = dlsym(handle, PluginEntryPoint.symbol) else {
                throw ConfigurationError(
                    key: key, problem: "\(path) is not a Streamgate plugin: it exports no \(PluginEntryPoint.symbol)")
            }
            let entry = unsafeBitCast(symbol, to: Entry.self)
            let before = registry.names
            let point = Unmanaged.passRetained(PluginEntryPoint(registrar: registry, hostMajor: PluginAPIVersion.major))
            let version = Int(entry(point.toOpaque()))
            point.release()
            let (major, minor) = (version / 1000, version % 1000)
            // Exact match: the API has no library evolution, so even a minor
            // version apart may lay its types out differently.
            guard major == PluginAPIVersion.major && minor == PluginAPIVersion.minor else {
                throw ConfigurationError(
                    key: key,
                    problem: "\(path) was built against plugin API \(major).\(minor); this gateway has \(PluginAPIVersion.major).\(PluginAPIVersion.minor): rebuild the plugin against it")
            }
            if let clash = registry.takeClash() {
                throw ConfigurationError(key: key, problem: "\(path) registers '\(clash)', a name already taken")
            }
            let added = registry.names.subtracting(before)
            guard !added.isEmpty else {
                throw ConfigurationError(key: key, problem: "\(path) registered no plugin")
            }
        }
    }
}
