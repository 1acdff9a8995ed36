/// What a client asks to do with an endpoint.
public enum EndpointAction: String, Sendable {
    case subscribe
    case publish
}

/// What the gateway knows about a client connection.
public struct ConnectionInfo: Sendable {
    /// Peer address, e.g. `127.0.0.1:53012`.
    public let remoteAddress: String
    /// The upgrade request's query string (without `?`), e.g. `access_token=...`.
    public let query: String
    /// The upgrade request's `Authorization` header, "" when absent.
    public let authorization: String
    /// The upgrade request's `Origin` header, "" when absent.
    public let origin: String
    /// Every header field of the upgrade request (since API 2.1): an
    /// authorizer can read any header without changes to the gateway.
    public let headers: RequestHeaders

    public init(remoteAddress: String, query: String, authorization: String, origin: String,
                headers: RequestHeaders = RequestHeaders())
    {
        self.remoteAddress = remoteAddress
        self.query = query
        self.authorization = authorization
        self.origin = origin
        self.headers = headers
    }

    /// The query string's parameters, decoded (since API 2.1).
    public var queryParameters: RequestParameters { RequestParameters(query: query) }

    /// The cookies the upgrade request carried, from its `Cookie` headers
    /// (since API 2.1; browsers send a page's cookies with a WebSocket upgrade).
    public var cookies: RequestParameters { RequestParameters(cookieHeaders: headers.values("cookie")) }
}

/// What a connection presents to prove who it is: a bearer token from the
/// `Authorization: Bearer` header, the `access_token` query parameter, or an
/// in-band `auth` request (which replaces the earlier one).
public struct Credentials: Sendable {
    /// nil when the client presented none.
    public let token: String?
    /// The upgrade request's `X-API-Key` header, nil when absent (for
    /// authorizers of API keys; kept apart from the bearer token).
    public let apiKey: String?
    public let connection: ConnectionInfo

    public init(token: String?, apiKey: String? = nil, connection: ConnectionInfo) {
        self.token = token
        self.apiKey = apiKey
        self.connection = connection
    }

    /// The upgrade request's headers, query parameters and cookies (since
    /// API 2.1), for authorizers that read credentials from elsewhere than
    /// the bearer token: a session cookie, a signed query, a custom header.
    public var headers: RequestHeaders { connection.headers }
    public var queryParameters: RequestParameters { connection.queryParameters }
    public var cookies: RequestParameters { connection.cookies }
}

/// The endpoints an identity may subscribe and publish to, as patterns
/// (`EndpointPattern`: `*` one segment, `**` any number).
public struct Rights: Sendable, Equatable {
    public var subscribe: [EndpointPattern]
    public var publish: [EndpointPattern]

    public init(subscribe: [EndpointPattern], publish: [EndpointPattern]) {
        self.subscribe = subscribe
        self.publish = publish
    }

    /// No endpoint at all.
    public static let none = Rights(subscribe: [], publish: [])
    /// Every endpoint, both actions (development only).
    public static let all: Rights = {
        let everything = try! EndpointPattern("/**")
        return Rights(subscribe: [everything], publish: [everything])
    }()

    /// Rights from pattern strings (a token's claims, a tokens file); the
    /// error names the bad pattern.
    public init(subscribePatterns: [String], publishPatterns: [String]) throws(EndpointError) {
        var subscribe: [EndpointPattern] = []
        var publish: [EndpointPattern] = []
        for text in subscribePatterns { subscribe.append(try Self.pattern(text)) }
        for text in publishPatterns { publish.append(try Self.pattern(text)) }
        self.init(subscribe: subscribe, publish: publish)
    }

    private static func pattern(_ text: String) throws(EndpointError) -> EndpointPattern {
        do {
            return try EndpointPattern(text)
        } catch {
            throw EndpointError("bad endpoint pattern '\(text)': \(error.reason)")
        }
    }

    public func allows(_ action: EndpointAction, _ endpoint: String) -> Bool {
        (action == .subscribe ? subscribe : publish).contains { $0.matches(endpoint) }
    }
}

/// Who a connection is, as an authorizer established it.
public struct Identity: Sendable, Equatable {
    /// The token's subject (or another stable name), for logs and Kafka headers.
    public let subject: String
    public let rights: Rights
    /// When the credentials stop being valid (seconds since the Unix epoch);
    /// nil: they do not expire. Always a whole-second-convertible number
    /// within ±`Identity.expiryBound` (see `init`).
    public let expiresAt: Double?

    /// Expiries further than this from 1970 (about 31 million years) are
    /// clamped to it: tokens and services can carry any number, and the host
    /// must be able to print and compare every expiry it holds.
    public static let expiryBound: Double = 1e15

    /// `expiresAt` is normalised: NaN counts as already expired (fail
    /// closed), anything beyond ±`expiryBound` (infinities included) is
    /// clamped to it.
    public init(subject: String, rights: Rights, expiresAt: Double?) {
        self.subject = subject
        self.rights = rights
        self.expiresAt = expiresAt.map { $0.isNaN ? 0 : min(max($0, -Self.expiryBound), Self.expiryBound) }
    }
}

/// An authorizer's answer. `abstain` lets the next authorizer in the
/// configured list decide (e.g. a JWT authorizer shown a token that is not
/// a JWT, or no token at all).
public enum AuthenticationResult: Sendable, Equatable {
    case identified(Identity)
    /// The credentials are the authorizer's kind but not acceptable
    /// (forged, expired, wrong audience): the reason is shown to the client.
    case denied(reason: String)
    case abstain
}

/// Establishes who presents some credentials and what they may do. Called
/// once per connection and once per in-band token refresh, never per
/// message; may take its time (an HTTP call, a signature check) but must be
/// thread-safe.
public protocol Authorizer: Sendable {
    func authenticate(_ credentials: Credentials) async -> AuthenticationResult
    /// Changes whenever credentials accepted before may no longer be valid
    /// (a tokens file or key set changed): the host then checks every live
    /// connection this authorizer identified again, so a revocation takes
    /// effect without a reconnect. Asked about once a second.
    func revision() async -> UInt64
}

extension Authorizer {
    /// Credentials that stay valid until they expire.
    public func revision() async -> UInt64 { 0 }
}

/// Builds an authorizer from its configuration section; registered by name.
public protocol AuthorizerFactory: Sendable {
    /// The name used in the configuration, e.g. `jwt`.
    var name: String { get }
    /// Reads `options` (calling `finish()` on it) and builds the authorizer.
    func makeAuthorizer(options: ConfigSection, context: PluginContext) throws -> any Authorizer
}
