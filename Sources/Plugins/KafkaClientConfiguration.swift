import CRdKafka
import StreamgatePluginAPI

/// Builds a librdkafka configuration, reporting a rejected property as a
/// configuration error naming its key.
enum KafkaClientConfiguration {
    /// Defaults the gateway needs; the operator's `properties` override them.
    static let consumerDefaults: [String: String] = [
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "enable.partition.eof": "false",
        "fetch.wait.max.ms": "50",
        "log.connection.close": "false",
        "allow.auto.create.topics": "false",
    ]

    /// Returns a new `rd_kafka_conf_t` (owned by the caller) with every property set.
    static func make(brokers: String, properties: [String: String], keyPrefix: String,
                     base: [String: String] = consumerDefaults) throws(ConfigurationError) -> OpaquePointer
    {
        let conf = rd_kafka_conf_new()!
        var all = base
        all["bootstrap.servers"] = brokers
        for (name, value) in properties { all[name] = value }
        var errstr = [CChar](repeating: 0, count: 512)
        for name in all.keys.sorted() {
            let value = all[name]!
            if rd_kafka_conf_set(conf, name, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let why = String(decoding: errstr.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let key = name == "bootstrap.servers" ? "\(keyPrefix).brokers" : "\(keyPrefix).properties.\(name)"
                throw ConfigurationError(key: key, value: "\"\(value)\"", expected: "a value librdkafka accepts (\(why))")
            }
        }
        return conf
    }
}
