import CRdKafka

/// What names the logs a consumer reads: the cluster, and per topic its id
/// and partition count. An epoch derives from these, so when one of them
/// changes the offsets mean other records — a topic deleted and re-created,
/// partitions added, a broker that came back with an empty log (a new topic
/// id), another cluster behind the same address.
struct KafkaLogIdentity: Equatable, Sendable {
    var clusterID: String
    /// Per topic; a topic the broker does not know (now) is absent.
    var topics: [String: TopicIdentity]

    /// The epoch of `partition` of `topic` under this identity.
    func epoch(topic: String, partition: Int32) -> String {
        let known = topics[topic]
        return KafkaConsumer.epoch(cluster: clusterID, topic: topic, topicID: known?.id ?? "", partition: partition,
                                   partitionCount: known?.partitionCount ?? 0)
    }
}

struct TopicIdentity: Equatable, Sendable {
    /// The topic id (KIP-516), "" when this librdkafka cannot tell.
    let id: String
    let partitionCount: Int32
}

extension KafkaConsumer {
    /// Reads the identity of `topics` from the broker (blocking, a second at
    /// most per request). A topic the broker does not know is left out;
    /// throws when the broker does not answer.
    func readIdentity(of topics: [String]) throws(KafkaSourceError) -> KafkaLogIdentity {
        var known: [String: TopicIdentity] = [:]
        for topic in topics {
            // Metadata first: it makes the request that also caches the cluster id.
            guard let count = try partitionCount(of: topic) else { continue }
            known[topic] = TopicIdentity(
                id: try KafkaTopicID.of(topic, handle: handle, timeoutMs: Self.metadataTimeoutMs), partitionCount: count)
        }
        return KafkaLogIdentity(clusterID: try clusterID(), topics: known)
    }

    /// The cluster id is part of every epoch, so without it there is no epoch.
    func clusterID() throws(KafkaSourceError) -> String {
        guard let id = rd_kafka_clusterid(handle, Self.metadataTimeoutMs) else {
            throw KafkaSourceError(message: "cannot read the cluster id (is the broker reachable?)")
        }
        defer { rd_kafka_mem_free(handle, id) }
        return String(cString: id)
    }

    /// The topic's partition count; nil when the broker does not know the topic.
    func partitionCount(of topic: String) throws(KafkaSourceError) -> Int32? {
        let topicHandle = rd_kafka_topic_new(handle, topic, nil)
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle, 0, topicHandle, &metadata, Self.metadataTimeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaSourceError(message: "metadata of topic '\(topic)': \(String(cString: rd_kafka_err2str(err)))")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1 else { return nil }
        let info = metadata.pointee.topics[0]
        if info.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { return nil }
        guard info.err == RD_KAFKA_RESP_ERR_NO_ERROR, info.partition_cnt > 0 else {
            throw KafkaSourceError(message: "topic '\(topic)': \(String(cString: rd_kafka_err2str(info.err)))")
        }
        return info.partition_cnt
    }

    /// An epoch names one offset sequence: it changes with the cluster, the
    /// topic (its id changes when it is re-created) or the partition count,
    /// any of which can make an offset ambiguous. `rewound` marks a log this
    /// node saw go back under the same identity (see `KafkaLogWatcher`).
    static func epoch(cluster: String, topic: String, topicID: String, partition: Int32, partitionCount: Int32,
                      rewound: String = "") -> String
    {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64
        let text = "\(cluster)|\(topic)|\(topicID)|\(partition)|\(partitionCount)" + (rewound.isEmpty ? "" : "|\(rewound)")
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
