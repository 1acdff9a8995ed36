import StreamgatePluginAPI

/// Turns an endpoint a client named into its Kafka address and the mapper's
/// own name for it, refusing what the mapper rejects or the source does not
/// serve. Subscribes and publishes resolve the same way.
struct EndpointResolver: Sendable {
    let mapper: any EndpointMapper
    let servedTopics: Set<String>

    enum Resolution {
        /// The address, and the canonical endpoint (nil when the key maps
        /// back to no endpoint, so nothing would be delivered to it).
        case found(KafkaAddress, canonical: String?)
        /// The error reply to send.
        case refused(String)
    }

    func resolve(_ endpoint: String, id: JSONValue?) -> Resolution {
        let address: KafkaAddress
        do {
            address = try mapper.address(of: endpoint)
        } catch {
            return .refused(ClientProtocol.error(.invalidEndpoint, error.reason, endpoint: endpoint, id: id))
        }
        guard servedTopics.contains(address.topic) else {
            return .refused(ClientProtocol.error(
                .unknownTopic, "topic '\(address.topic)' is not served by this gateway", endpoint: endpoint, id: id))
        }
        return .found(address, canonical: canonicalName(of: address))
    }

    /// The canonical name of what the client named, or the name itself when
    /// it does not resolve (an unsubscribe answers with it either way).
    func canonicalNameOrSelf(_ endpoint: String) -> String {
        (try? mapper.address(of: endpoint)).flatMap(canonicalName) ?? endpoint
    }

    /// Deliveries are addressed by the mapper's own name for (topic, key).
    private func canonicalName(of address: KafkaAddress) -> String? {
        var key = address.key
        return key.withUTF8 { mapper.endpoint(topic: address.topic, key: UnsafeRawBufferPointer($0)) }
    }
}
