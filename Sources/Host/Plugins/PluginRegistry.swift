import StreamgatePluginAPI
import StreamgatePlugins

/// The plugin factories the gateway knows, by kind and name.
///
/// Filled at start-up (built-ins first) and then only read: the configuration
/// chooses one plugin of each kind by name.
final class PluginRegistry: PluginRegistrar {
    private(set) var authorizers: [String: any AuthorizerFactory] = [:]
    private(set) var mappers: [String: any EndpointMapperFactory] = [:]
    private(set) var sources: [String: any MessageSourceFactory] = [:]

    /// A registry holding the built-in plugins.
    /// `checkingOnly`: plugins that follow something (the portal) only
    /// check their options (`check-config`).
    static func builtin(checkingOnly: Bool = false) -> PluginRegistry {
        let registry = PluginRegistry()
        BuiltinPlugins.register(into: registry, followPortal: !checkingOnly)
        return registry
    }

    /// A name registered twice (the first is kept), reported by the loader.
    private var clash: String?

    func register(authorizer factory: any AuthorizerFactory) {
        if authorizers[factory.name] != nil { clash = "authorizer \(factory.name)"; return }
        authorizers[factory.name] = factory
    }

    func register(mapper factory: any EndpointMapperFactory) {
        if mappers[factory.name] != nil { clash = "mapper \(factory.name)"; return }
        mappers[factory.name] = factory
    }

    func register(source factory: any MessageSourceFactory) {
        if sources[factory.name] != nil { clash = "source \(factory.name)"; return }
        sources[factory.name] = factory
    }

    /// Every registered name, by kind.
    var names: Set<String> {
        Set(authorizers.keys.map { "authorizer \($0)" } + mappers.keys.map { "mapper \($0)" }
            + sources.keys.map { "source \($0)" })
    }

    func takeClash() -> String? {
        defer { clash = nil }
        return clash
    }
}

/// The plugins a configuration chose, built and validated.
struct PluginSet {
    let authorizers: AuthorizerChain
    let mapper: any EndpointMapper
    let source: any MessageSource

    init(configuration: GatewayConfiguration, registry: PluginRegistry) throws(ConfigurationErrorInFile) {
        do {
            try PluginLoader.load(configuration.pluginLibraries, into: registry)
            authorizers = AuthorizerChain(authorizers: try configuration.authorization.map { choice in
                (choice.name, try Self.build(choice, registry.authorizers) { try $0.makeAuthorizer(options: $1, context: $2) })
            })
            mapper = try Self.build(configuration.mapping, registry.mappers) {
                try $0.makeMapper(options: $1, context: $2)
            }
            source = try Self.build(configuration.source, registry.sources) {
                try $0.makeSource(options: $1, context: $2)
            }
        } catch let error as ConfigurationError {
            throw ConfigurationErrorInFile(file: configuration.file, error: error)
        } catch {
            throw ConfigurationErrorInFile(file: configuration.file, message: "\(error)")
        }
    }

    private static func build<Factory, Plugin>(
        _ choice: GatewayConfiguration.PluginChoice, _ factories: [String: Factory],
        _ make: (Factory, ConfigSection, PluginContext) throws -> Plugin
    ) throws -> Plugin {
        guard let factory = factories[choice.name] else {
            throw ConfigurationError(
                key: "\(choice.key).plugin", value: "\"\(choice.name)\"",
                expected: "one of " + factories.keys.sorted().map { "\"\($0)\"" }.joined(separator: ", "))
        }
        let context = PluginContext(logger: SwiftLogPluginLogger(plugin: choice.name))
        return try make(factory, choice.options, context)
    }
}
