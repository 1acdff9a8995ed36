/// Where an endpoint lives in Kafka.
public struct KafkaAddress: Sendable, Equatable, Hashable {
    public let topic: String
    public let key: String

    public init(topic: String, key: String) {
        self.topic = topic
        self.key = key
    }

    /// Kafka's own limit on topic names.
    public static let maxTopicLength = 249

    /// Kafka's rule for topic names: 1 to 249 of a-z, A-Z, 0-9, '.', '_', '-',
    /// and not "." or ".." (since API 2.2; mappers, sources and the portal
    /// check names the same way).
    public static func isValidTopic(_ topic: String) -> Bool {
        guard !topic.isEmpty, topic.utf8.count <= maxTopicLength, topic != ".", topic != ".." else { return false }
        return topic.utf8.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: ".")
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
    }
}

/// Why an endpoint path was refused, shown to the client in an error frame.
public struct EndpointError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}

/// Maps endpoint paths to Kafka topics and keys, in both directions.
/// Called on event-loop and consumer threads: must be fast and thread-safe.
public protocol EndpointMapper: Sendable {
    /// The Kafka topic and key behind an endpoint path a client asked for.
    func address(of endpoint: String) throws(EndpointError) -> KafkaAddress
    /// The endpoint path a Kafka record is delivered to, or nil when the
    /// record belongs to no endpoint (e.g. it has no key).
    func endpoint(topic: String, key: UnsafeRawBufferPointer) -> String?
}

/// Builds an endpoint mapper from its configuration section; registered by name.
public protocol EndpointMapperFactory: Sendable {
    var name: String { get }
    func makeMapper(options: ConfigSection, context: PluginContext) throws -> any EndpointMapper
}
