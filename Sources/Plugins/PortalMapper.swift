import StreamgatePluginAPI

/// The `portal` mapper: endpoints are the ones the portal's APIs define
/// (`/scores/live/{sport}` → topic `scores`, key `live/{sport}`), followed
/// live: a new or changed API applies at the next poll, without a restart.
/// A path no API defines is refused; a record whose key no endpoint's key
/// template matches belongs to no endpoint.
public struct PortalMapperFactory: EndpointMapperFactory {
    public let name = "portal"
    /// False: the options are checked only (see `BuiltinPlugins`).
    let followPortal: Bool

    public init(followPortal: Bool = true) { self.followPortal = followPortal }

    public func makeMapper(options: ConfigSection, context: PluginContext) throws -> any EndpointMapper {
        let follower = try PortalFollowers.follower(options: options, context: context, start: followPortal)
        try options.finish()
        return PortalMapper(follower: follower)
    }
}

struct PortalMapper: EndpointMapper {
    let follower: PortalFollower

    func address(of endpoint: String) throws(EndpointError) -> KafkaAddress {
        guard let state = follower.state else {
            throw EndpointError("the gateway has not received the portal's APIs yet")
        }
        guard let (match, values) = state.endpoint(forPath: endpoint) else {
            throw EndpointError("no API defines the endpoint '\(endpoint)'")
        }
        return KafkaAddress(topic: match.topic, key: match.key.fill(values))
    }

    func endpoint(topic: String, key: UnsafeRawBufferPointer) -> String? {
        guard !key.isEmpty, let state = follower.state, let candidates = state.byTopic[topic],
              let keyString = String(validating: key, as: UTF8.self)
        else { return nil }
        for candidate in candidates {
            if let values = candidate.key.match(keyString) { return candidate.path.fill(values) }
        }
        return nil
    }
}
