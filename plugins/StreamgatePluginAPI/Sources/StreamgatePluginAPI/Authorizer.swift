/// What a client asks to do with an endpoint.
public enum EndpointAction: String, Sendable {
    case subscribe
    case publish
}

/// What the gateway knows about a client connection.
public struct ConnectionInfo: Sendable {
    /// Peer address, e.g. `127.0.0.1:53012`.
    public let remoteAddress: String
    /// The upgrade request's query string (without `?`), e.g. `token=...`.
    public let query: String
    /// The upgrade request's `Authorization` header, "" when absent.
    public let authorization: String
    /// The upgrade request's `Origin` header, "" when absent.
    public let origin: String

    public init(remoteAddress: String, query: String, authorization: String, origin: String) {
        self.remoteAddress = remoteAddress
        self.query = query
        self.authorization = authorization
        self.origin = origin
    }
}

public struct AuthorizationRequest: Sendable {
    public let action: EndpointAction
    /// The endpoint path, e.g. `/scores/live/football`.
    public let endpoint: String
    public let connection: ConnectionInfo

    public init(action: EndpointAction, endpoint: String, connection: ConnectionInfo) {
        self.action = action
        self.endpoint = endpoint
        self.connection = connection
    }
}

/// An authorizer's answer. `abstain` lets the next authorizer in the
/// configured list decide; if all abstain the request is denied.
public enum AuthorizationDecision: Sendable, Equatable {
    case allow
    case deny(reason: String)
    case abstain
}

/// Decides whether a connection may subscribe or publish to an endpoint.
/// Called on event-loop threads: must be fast and thread-safe.
public protocol Authorizer: Sendable {
    func authorize(_ request: AuthorizationRequest) -> AuthorizationDecision
}

/// Builds an authorizer from its configuration section; registered by name.
public protocol AuthorizerFactory: Sendable {
    /// The name used in the configuration, e.g. `allow-all`.
    var name: String { get }
    /// Reads `options` (calling `finish()` on it) and builds the authorizer.
    func makeAuthorizer(options: ConfigSection, context: PluginContext) throws -> any Authorizer
}
