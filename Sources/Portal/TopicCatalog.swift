import CRdKafka
import Foundation

/// The topics an API may use. With Kafka configured, the portal asks the
/// brokers (a metadata request), so an API on a topic that does not exist is
/// refused with an error naming the field; without, any valid name is taken.
public protocol TopicCatalog: Sendable {
    /// nil: not checked.
    func topics() async throws -> Set<String>?
}

public struct UncheckedTopics: TopicCatalog {
    public init() {}
    public func topics() async throws -> Set<String>? { nil }
}

/// Asks Kafka with librdkafka's metadata request on each save (saves are
/// rare, and a topic created a second ago must count).
public struct KafkaTopicCatalog: TopicCatalog {
    let brokers: String
    let properties: [String: String]

    public init(brokers: String, properties: [String: String]) {
        self.brokers = brokers
        self.properties = properties
    }

    public func topics() async throws -> Set<String>? {
        let brokers = brokers, properties = properties
        return try await withCheckedThrowingContinuation { continuation in
            // librdkafka blocks; keep it off the cooperative pool.
            Thread.detachNewThread {
                continuation.resume(with: Result { try Self.fetch(brokers: brokers, properties: properties) })
            }
        }
    }

    static func fetch(brokers: String, properties: [String: String]) throws -> Set<String> {
        var error = [CChar](repeating: 0, count: 512)
        let conf = rd_kafka_conf_new()
        for (key, value) in [("bootstrap.servers", brokers)] + properties.sorted(by: { $0.key < $1.key }) {
            guard rd_kafka_conf_set(conf, key, value, &error, error.count) == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw PortalError(.serviceUnavailable, code: "kafka_unavailable", "kafka.properties.\(key): \(Self.text(error))")
            }
        }
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &error, error.count) else {
            throw PortalError(.serviceUnavailable, code: "kafka_unavailable", "cannot create a Kafka client: \(Self.text(error))")
        }
        defer { rd_kafka_destroy(handle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let result = rd_kafka_metadata(handle, 1, nil, &metadata, 5000)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw PortalError(.serviceUnavailable, code: "kafka_unavailable",
                              "Kafka at \(brokers) did not list its topics: \(String(cString: rd_kafka_err2str(result)))")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var names: Set<String> = []
        for i in 0..<Int(metadata.pointee.topic_cnt) {
            let topic = metadata.pointee.topics[i]
            if topic.err == RD_KAFKA_RESP_ERR_NO_ERROR, let name = topic.topic { names.insert(String(cString: name)) }
        }
        return names
    }

    /// librdkafka's NUL-terminated error buffer as text.
    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
