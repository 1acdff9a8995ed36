import StreamgatePluginAPI

/// The zero-configuration mapping: endpoint `/t/k` is Kafka topic `t`, key `k`.
///
/// The topic is the first path segment; the key is everything after the next
/// `/` and may itself contain `/` (`/scores/live/football` is topic `scores`,
/// key `live/football`). Kafka records with no key, or a key that is not
/// valid UTF-8, belong to no endpoint.
public struct TopicKeyMapper: EndpointMapper {
    /// Longest endpoint path accepted, in UTF-8 bytes.
    public static let maxEndpointBytes = 1024

    public init() {}

    public func address(of endpoint: String) throws(EndpointError) -> KafkaAddress {
        let bytes = Array(endpoint.utf8)
        guard bytes.first == UInt8(ascii: "/") else {
            throw EndpointError("an endpoint must start with '/', as in /topic/key")
        }
        guard bytes.count <= Self.maxEndpointBytes else {
            throw EndpointError("an endpoint may be at most \(Self.maxEndpointBytes) bytes long")
        }
        guard let slash = bytes.dropFirst().firstIndex(of: UInt8(ascii: "/")) else {
            throw EndpointError("an endpoint needs a topic and a key, as in /topic/key")
        }
        let topic = String(decoding: bytes[1..<slash], as: UTF8.self)
        let key = String(decoding: bytes[(slash + 1)...], as: UTF8.self)
        guard KafkaAddress.isValidTopic(topic) else {
            throw EndpointError(
                "'\(topic)' is not a valid Kafka topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-')")
        }
        guard !key.isEmpty else {
            throw EndpointError("an endpoint needs a non-empty key after the topic, as in /topic/key")
        }
        // Unicode's control characters (general category Cc): C0, DEL and
        // C1 (U+0080-U+009F, e.g. NEL), not only the ASCII ones.
        if let control = key.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            let code = String(control.value, radix: 16, uppercase: true)
            throw EndpointError(
                "an endpoint key may not contain control characters (found U+\(String(repeating: "0", count: max(0, 4 - code.count)))\(code))")
        }
        return KafkaAddress(topic: topic, key: key)
    }

    public func endpoint(topic: String, key: UnsafeRawBufferPointer) -> String? {
        guard !key.isEmpty, let keyString = String(validating: key, as: UTF8.self) else { return nil }
        return "/" + topic + "/" + keyString
    }
}

public struct TopicKeyMapperFactory: EndpointMapperFactory {
    public let name = "topic-key"

    public init() {}

    public func makeMapper(options: ConfigSection, context: PluginContext) throws -> any EndpointMapper {
        try options.finish()
        return TopicKeyMapper()
    }
}
