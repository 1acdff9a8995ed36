import CRdKafka
import Foundation
import StreamgatePluginAPI
import Synchronization

/// The `kafka` source: a librdkafka consumer assigned to every partition of the
/// configured topics. No consumer group is joined (each gateway node reads
/// everything), and consumption starts at the end of the log, or at the
/// beginning with `"start": "earliest"`.
public struct KafkaSourceFactory: MessageSourceFactory {
    public let name = "kafka"

    public init() {}

    public func makeSource(options: ConfigSection, context: PluginContext) throws -> any MessageSource {
        let brokers = try options.requiredString("brokers", expected: "a string such as \"127.0.0.1:9092\"")
        guard let topics = try options.stringArray("topics"), !topics.isEmpty else {
            throw ConfigurationError(
                key: options.keyPath("topics"), value: options.raw("topics")?.description,
                expected: "a non-empty array of topic names")
        }
        for (i, topic) in topics.enumerated() where !KafkaAddress.isValidTopic(topic) {
            throw ConfigurationError(
                key: "\(options.keyPath("topics"))[\(i)]", value: "\"\(topic)\"", expected: "a valid Kafka topic name")
        }
        let start = try options.string("start", default: "latest")
        guard start == "latest" || start == "earliest" else {
            throw ConfigurationError(key: options.keyPath("start"), value: "\"\(start)\"", expected: "\"latest\" or \"earliest\"")
        }
        let properties = try options.stringMap("properties")
        if let reset = properties["auto.offset.reset"] {
            throw ConfigurationError(
                key: "\(options.keyPath("properties")).auto.offset.reset", value: "\"\(reset)\"",
                expected: "no such key: the gateway decides where a partition goes on when its offset is out of range (docs/recovery.md)")
        }
        try options.finish()
        // Validate every property now, so `check-config` catches a bad one.
        rd_kafka_conf_destroy(try KafkaClientConfiguration.make(
            brokers: brokers, properties: properties, keyPrefix: options.path))
        return KafkaSource(
            brokers: brokers, topics: topics, properties: properties, startAtEarliest: start == "earliest",
            logger: context.logger, keyPrefix: options.path)
    }
}

public struct KafkaSource: SignallingSource, CustomStringConvertible {
    public let brokers: String
    public let topics: [String]
    let properties: [String: String]
    let startAtEarliest: Bool
    let logger: any PluginLogger
    let keyPrefix: String
    private let signalling = KafkaSignalling()
    private let publisher: KafkaPublisher

    /// Names the property keys, never their values: a `properties` map may
    /// hold SASL or TLS secrets, and services are described in debug logs.
    public var description: String {
        "KafkaSource(brokers: \(brokers), topics: \(topics), properties: \(properties.keys.sorted()))"
    }

    init(brokers: String, topics: [String], properties: [String: String], startAtEarliest: Bool,
         logger: any PluginLogger, keyPrefix: String)
    {
        self.brokers = brokers
        self.topics = topics
        self.properties = properties
        self.startAtEarliest = startAtEarliest
        self.logger = logger
        self.keyPrefix = keyPrefix
        publisher = KafkaPublisher(brokers: brokers, properties: properties, keyPrefix: keyPrefix)
    }

    public func prepareSignalling(sink: any MessageSink) async throws -> Int32? {
        let consumer = try makeConsumer(watched: true)
        let box = Mutex<Int32?>(nil)
        await runOnDedicatedThread(named: "kafka-source-setup") { [signalling, topics, startAtEarliest, brokers] stop in
            let fd = signalling.start(
                consumer, topics: topics, fromEarliest: startAtEarliest, brokers: brokers, stop: stop, sink: sink)
            box.withLock { $0 = fd }
        }
        guard let fd = box.withLock({ $0 }) else {
            consumer.destroy()
            return nil
        }
        sink.sourceIsReady()
        return fd
    }

    public func drain(into sink: any MessageSink) { signalling.drain(into: sink) }

    public func finishSignalling() { signalling.finish() }

    /// A consumer handle configured from the options (not yet assigned),
    /// with `extra` librdkafka properties on top. A `watched` consumer (the
    /// live one) stops at an offset out of range and reports errors as
    /// events, for its `KafkaLogWatcher`.
    func makeConsumer(extra: [String: String] = [:], watched: Bool = false) throws -> KafkaConsumer {
        let conf = try KafkaClientConfiguration.make(
            brokers: brokers, properties: properties.merging(extra) { _, new in new }, keyPrefix: keyPrefix)
        // assign() needs a group id, but no group is joined and nothing is committed.
        var errstr = [CChar](repeating: 0, count: 512)
        rd_kafka_conf_set(conf, "group.id", "streamgate-\(UUID().uuidString)", &errstr, errstr.count)
        if watched {
            rd_kafka_conf_set(conf, "auto.offset.reset", "error", &errstr, errstr.count)
            rd_kafka_conf_set_events(conf, Int32(RD_KAFKA_EVENT_ERROR))
        }
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaSourceError(message: "cannot create Kafka consumer: \(String(decoding: errstr.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        return KafkaConsumer(handle: handle, logger: logger)
    }

    public func run(delivering sink: any MessageSink) async throws {
        let consumer = try makeConsumer(watched: true)
        defer { consumer.destroy() }

        // Everything that blocks in librdkafka runs on a thread of its own,
        // never on the Swift concurrency pool.
        await runOnDedicatedThread(named: "kafka-source") { stop in
            consumer.run(topics: topics, fromEarliest: startAtEarliest, sink: sink, stop: stop, brokers: brokers)
        }
    }
}

/// Consumer lag: the host subtracts its positions from these.
extension KafkaSource: LogEndReportingSource {
    public func partitionLogEnds() -> [PartitionLogEnd] { signalling.logEnds() }
}

/// Client publishes are produced by the source's own producer.
extension KafkaSource: PublishingSource {
    public func publish(_ request: PublishRequest,
                        completion: @escaping @Sendable (Result<PublishReceipt, PublishError>) -> Void)
    {
        publisher.publish(request, completion: completion)
    }

    public func finishPublishing() { publisher.finish() }
}

struct KafkaSourceError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
