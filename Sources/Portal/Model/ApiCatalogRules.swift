import StreamgatePluginAPI

/// The rules an API must keep with every other API of the cluster, because
/// gateways map in both directions with one table:
/// - no path may be matched by two endpoints (a subscribe would be ambiguous);
/// - on one topic, no key may be matched by two key templates (a record
///   would belong to two endpoints, and the reverse mapping would guess);
/// - every topic exists in Kafka, when the portal can ask.
/// Errors name the field of the API being saved.
public enum ApiCatalogRules {
    /// Checks `candidate` against `others` (every API but the one being
    /// replaced). `knownTopics` nil: Kafka was not asked.
    public static func check(_ candidate: ApiDefinition, against others: [ApiDefinition], knownTopics: Set<String>?) throws(ConfigurationError) {
        for (i, endpoint) in candidate.endpoints.enumerated() {
            if let knownTopics, !knownTopics.contains(endpoint.topic) {
                throw ConfigurationError(key: "endpoints[\(i)].topic", value: "\"\(endpoint.topic)\"",
                                         expected: "a topic that exists in Kafka (known: \(knownTopics.sorted().prefix(20).joined(separator: ", ")))")
            }
            for other in others {
                for theirs in other.endpoints {
                    if endpoint.path.overlaps(theirs.path) {
                        throw ConfigurationError(key: "endpoints[\(i)].path", value: "\"\(endpoint.path)\"",
                                                 expected: "a path no other API's endpoint can match (API '\(other.name)' has \"\(theirs.path)\")")
                    }
                    if endpoint.topic == theirs.topic, endpoint.key.overlaps(theirs.key) {
                        throw ConfigurationError(key: "endpoints[\(i)].key", value: "\"\(endpoint.key)\"",
                                                 expected: "a key template no other endpoint on topic '\(endpoint.topic)' can match (API '\(other.name)' has \"\(theirs.key)\" for \"\(theirs.path)\")")
                    }
                }
            }
            for (j, earlier) in candidate.endpoints[..<i].enumerated() where earlier.topic == endpoint.topic && earlier.key.overlaps(endpoint.key) {
                throw ConfigurationError(key: "endpoints[\(i)].key", value: "\"\(endpoint.key)\"",
                                         expected: "a key template endpoints[\(j)] (\"\(earlier.key)\", same topic) cannot match")
            }
        }
    }
}
