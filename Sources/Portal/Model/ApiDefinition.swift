import StreamgatePluginAPI

/// A streaming API as the portal keeps it: named endpoints, each a path
/// template mapped to a Kafka topic and key template, with the actions a
/// token may be given on it. Parsed from a request body with `ConfigSection`,
/// so every error names the field (`endpoints[1].key`).
public struct ApiDefinition: Sendable, Equatable {
    public var name: String
    public var version: String
    public var description: String
    public var owner: String
    public var endpoints: [ApiEndpoint]

    public init(name: String, version: String = "1.0.0", description: String = "", owner: String = "", endpoints: [ApiEndpoint]) {
        self.name = name
        self.version = version
        self.description = description
        self.owner = owner
        self.endpoints = endpoints
    }

    /// Parses and checks one API on its own (the catalog checks it against the others).
    /// `name` is the name in the URL of a PUT, which the body must not contradict.
    public init(json: JSONValue, name urlName: String? = nil) throws(ConfigurationError) {
        let root = try ConfigSection(path: "", value: json)
        if let urlName, !root.contains("name") {
            name = urlName
        } else {
            name = try root.requiredString("name", expected: "the API's name (1 to 64 of a-z, 0-9, '-', starting with a letter or digit)")
        }
        guard Self.isValidName(name) else {
            throw ConfigurationError(key: "name", value: "\"\(name)\"", expected: "1 to 64 of a-z, 0-9, '-', starting with a letter or digit")
        }
        if let urlName, urlName != name {
            throw ConfigurationError(key: "name", value: "\"\(name)\"", expected: "the name in the URL, \"\(urlName)\" (an API is not renamed)")
        }
        version = try root.string("version", default: "1.0.0")
        guard !version.isEmpty, version.utf8.count <= 64 else {
            throw ConfigurationError(key: "version", value: "\"\(version)\"", expected: "1 to 64 characters, such as \"1.0.0\"")
        }
        description = try root.string("description", default: "")
        owner = try root.string("owner", default: "")
        guard case .array(let items)? = root.raw("endpoints"), !items.isEmpty else {
            throw ConfigurationError(key: "endpoints", value: nil, expected: "a non-empty array of endpoints")
        }
        var endpoints: [ApiEndpoint] = []
        for (i, item) in items.enumerated() {
            let endpoint = try ApiEndpoint(ConfigSection(path: "endpoints[\(i)]", value: item))
            if let earlier = endpoints.firstIndex(where: { $0.path.overlaps(endpoint.path) }) {
                throw ConfigurationError(key: "endpoints[\(i)].path", value: "\"\(endpoint.path)\"",
                                         expected: "a path no other endpoint can match (endpoints[\(earlier)] \"\(endpoints[earlier].path)\" matches the same paths)")
            }
            endpoints.append(endpoint)
        }
        self.endpoints = endpoints
        try root.finish()
    }

    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 64, first != UInt8(ascii: "-") else { return false }
        return name.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") }
    }

    public var json: JSONValue {
        .object([
            "name": .string(name), "version": .string(version), "description": .string(description),
            "owner": .string(owner), "endpoints": .array(endpoints.map(\.json)),
        ])
    }
}

/// One endpoint of an API.
public struct ApiEndpoint: Sendable, Equatable {
    public var path: EndpointTemplate
    public var topic: String
    public var key: KeyTemplate
    public var actions: Set<EndpointAction>
    public var description: String
    /// The JSON Schema of its messages, if the API gives one.
    public var schema: JSONValue?

    public init(path: EndpointTemplate, topic: String, key: KeyTemplate, actions: Set<EndpointAction> = [.subscribe],
                description: String = "", schema: JSONValue? = nil)
    {
        self.path = path
        self.topic = topic
        self.key = key
        self.actions = actions
        self.description = description
        self.schema = schema
    }

    init(_ section: ConfigSection) throws(ConfigurationError) {
        let pathText = try section.requiredString("path", expected: "a path template such as \"/scores/live/{sport}\"")
        do { path = try EndpointTemplate(pathText) } catch {
            throw ConfigurationError(key: section.keyPath("path"), value: "\"\(pathText)\"", expected: "a path template: \(error.reason)")
        }
        topic = try section.requiredString("topic", expected: "a Kafka topic name")
        guard KafkaAddress.isValidTopic(topic) else {
            throw ConfigurationError(key: section.keyPath("topic"), value: "\"\(topic)\"", expected: "a valid Kafka topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-')")
        }
        let keyText = try section.requiredString("key", expected: "a key template such as \"live/{sport}\"")
        do { key = try KeyTemplate(keyText) } catch {
            throw ConfigurationError(key: section.keyPath("key"), value: "\"\(keyText)\"", expected: "a key template: \(error.reason)")
        }
        guard Set(path.parameters) == Set(key.parameters) else {
            throw ConfigurationError(key: section.keyPath("key"), value: "\"\(keyText)\"",
                                     expected: "the same parameters as the path (\(path.parameters.map { "{\($0)}" }.joined(separator: ", ")))")
        }
        let actionNames = try section.stringArray("actions") ?? ["subscribe"]
        var actions: Set<EndpointAction> = []
        for (i, name) in actionNames.enumerated() {
            guard let action = EndpointAction(rawValue: name) else {
                throw ConfigurationError(key: "\(section.keyPath("actions"))[\(i)]", value: "\"\(name)\"", expected: "\"subscribe\" or \"publish\"")
            }
            actions.insert(action)
        }
        guard !actions.isEmpty else {
            throw ConfigurationError(key: section.keyPath("actions"), value: "[]", expected: "at least one of \"subscribe\", \"publish\"")
        }
        self.actions = actions
        description = try section.string("description", default: "")
        switch section.raw("schema") {
        case nil, .null?: schema = nil
        case .object(let object)?: schema = .object(object)
        case .bool(let b)?: schema = .bool(b)
        case let other?:
            throw ConfigurationError(key: section.keyPath("schema"), value: other.description, expected: "a JSON Schema (an object)")
        }
        try section.finish()
    }

    /// Actions in a fixed order, for JSON.
    public var actionNames: [String] { [EndpointAction.subscribe, .publish].filter(actions.contains).map(\.rawValue) }

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "path": .string(path.text), "topic": .string(topic), "key": .string(key.text),
            "actions": .array(actionNames.map { .string($0) }), "description": .string(description),
        ]
        if let schema { object["schema"] = schema }
        return .object(object)
    }
}
