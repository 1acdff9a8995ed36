import StreamgatePluginAPI

@_cdecl("streamgate_plugin_register")
public func streamgatePluginRegister(_ entry: UnsafeMutableRawPointer) -> Int32 {
    PluginEntryPoint.register(entry) { registrar in
        registrar.register(mapper: DottedKeyMapperFactory())
    }
}

/// `"mapping": {"plugin": "dotted-key", "options": {"prefix": "/api"}}`:
/// endpoint `/api/scores/live/nba` is topic `scores`, key `live.nba`, and a
/// record of `scores` with key `live.nba` is delivered to that endpoint.
/// Keys with an empty part (`live..nba`, `.nba`) belong to no endpoint.
public struct DottedKeyMapperFactory: EndpointMapperFactory {
    public let name = "dotted-key"

    public init() {}

    public func makeMapper(options: ConfigSection, context: PluginContext) throws -> any EndpointMapper {
        let prefix = try options.string("prefix", default: "/api")
        guard prefix.hasPrefix("/"), !prefix.hasSuffix("/"), !prefix.contains(".") else {
            throw ConfigurationError(key: options.keyPath("prefix"), value: "\"\(prefix)\"",
                                     expected: "a path such as \"/api\" (leading '/', no trailing '/', no '.')")
        }
        try options.finish()
        return DottedKeyMapper(prefix: prefix)
    }
}

struct DottedKeyMapper: EndpointMapper {
    let prefix: String

    func address(of endpoint: String) throws(EndpointError) -> KafkaAddress {
        guard endpoint.hasPrefix(prefix + "/") else { throw EndpointError("endpoints start with \(prefix)/") }
        let parts = endpoint.dropFirst(prefix.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts.allSatisfy({ !$0.isEmpty && !$0.contains(".") }) else {
            throw EndpointError("expected \(prefix)/<topic>/<key part>/..., with no empty part and no '.'")
        }
        return KafkaAddress(topic: String(parts[0]), key: parts.dropFirst().joined(separator: "."))
    }

    func endpoint(topic: String, key: UnsafeRawBufferPointer) -> String? {
        guard let text = String(validating: key, as: UTF8.self) else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && !$0.contains("/") }) else { return nil }
        return "\(prefix)/\(topic)/" + parts.joined(separator: "/")
    }
}
