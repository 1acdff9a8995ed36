import CRdKafka
import Glibc

/// A topic's id (KIP-516): Kafka gives a topic a new id when it is deleted
/// and re-created, so the epoch can tell the two logs apart even with the
/// same name and partition count.
///
/// The id comes from librdkafka's DescribeTopics (librdkafka >= 2.3). The
/// project builds against Debian's librdkafka 2.0.2 header, which lacks it,
/// and runs with a newer library (README), so the functions are looked up at
/// run time; with an older library the id is empty and the epoch falls back
/// to cluster, topic and partition count.
enum KafkaTopicID {
    private typealias NamesToCollection = @convention(c) (UnsafeMutablePointer<UnsafePointer<CChar>?>?, Int) -> OpaquePointer?
    private typealias Destroy = @convention(c) (OpaquePointer?) -> Void
    private typealias Describe = @convention(c) (OpaquePointer?, OpaquePointer?, OpaquePointer?, OpaquePointer?) -> Void
    private typealias Convert = @convention(c) (OpaquePointer?) -> OpaquePointer?
    private typealias ResultTopics = @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>?)
        -> UnsafeMutablePointer<OpaquePointer?>?
    private typealias ToString = @convention(c) (OpaquePointer?) -> UnsafePointer<CChar>?

    private struct API {
        let namesToCollection: NamesToCollection
        let destroyCollection: Destroy
        let describe: Describe
        let eventResult: Convert
        let resultTopics: ResultTopics
        let descriptionError: Convert
        let descriptionTopicID: Convert
        let uuidBase64: ToString
    }

    private static let api: API? = {
        func symbol<T>(_ name: String, as: T.Type) -> T? {
            dlsym(nil, name).map { unsafeBitCast($0, to: T.self) }
        }
        guard let names = symbol("rd_kafka_TopicCollection_of_topic_names", as: NamesToCollection.self),
              let destroy = symbol("rd_kafka_TopicCollection_destroy", as: Destroy.self),
              let describe = symbol("rd_kafka_DescribeTopics", as: Describe.self),
              let result = symbol("rd_kafka_event_DescribeTopics_result", as: Convert.self),
              let topics = symbol("rd_kafka_DescribeTopics_result_topics", as: ResultTopics.self),
              let error = symbol("rd_kafka_TopicDescription_error", as: Convert.self),
              let id = symbol("rd_kafka_TopicDescription_topic_id", as: Convert.self),
              let base64 = symbol("rd_kafka_Uuid_base64str", as: ToString.self)
        else { return nil }
        return API(namesToCollection: names, destroyCollection: destroy, describe: describe, eventResult: result,
                   resultTopics: topics, descriptionError: error, descriptionTopicID: id, uuidBase64: base64)
    }()

    /// Whether the running librdkafka can describe topic ids.
    static var isAvailable: Bool { api != nil }

    /// The topic's id (base64), "" when the library cannot tell; throws
    /// when the broker does not answer in time or refuses.
    static func of(_ topic: String, handle: OpaquePointer, timeoutMs: Int32) throws(KafkaSourceError) -> String {
        guard let api else { return "" }
        guard let queue = rd_kafka_queue_new(handle) else { throw KafkaSourceError(message: "describe \(topic): no queue") }
        defer { rd_kafka_queue_destroy(queue) }
        let collection = topic.withCString { name -> OpaquePointer? in
            var names: [UnsafePointer<CChar>?] = [name]
            return api.namesToCollection(&names, 1)
        }
        guard let collection else { throw KafkaSourceError(message: "describe \(topic): out of memory") }
        defer { api.destroyCollection(collection) }
        api.describe(handle, collection, nil, queue)
        guard let event = rd_kafka_queue_poll(queue, Int32(timeoutMs)) else {
            throw KafkaSourceError(message: "describe \(topic): no answer within \(timeoutMs) ms")
        }
        defer { rd_kafka_event_destroy(event) }
        if rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaSourceError(message: "describe \(topic): \(String(cString: rd_kafka_event_error_string(event)))")
        }
        var count = 0
        guard let result = api.eventResult(event), let descriptions = api.resultTopics(result, &count), count == 1,
              let description = descriptions[0]
        else { throw KafkaSourceError(message: "describe \(topic): unexpected answer") }
        if api.descriptionError(description) != nil {
            throw KafkaSourceError(message: "describe \(topic): topic not found")
        }
        guard let id = api.descriptionTopicID(description), let text = api.uuidBase64(id) else { return "" }
        return String(cString: text)
    }
}
