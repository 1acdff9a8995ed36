/// A request the gateway refused, or a failure the application should know about.
///
/// `code` is the protocol's error code (`docs/protocol.md`) or one of the SDK's
/// own (`disconnected`, `timeout`, `closed`, `tokenProvider`, `badOptions`), so
/// callers can match on it:
///
/// ```swift
/// catch let error as StreamgateError where error.code == .rateLimited { ... }
/// ```
public struct StreamgateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Code
    /// What the gateway or the SDK said about it.
    public var message: String
    /// The endpoint the error is about, when there is one.
    public var endpoint: String?

    public init(code: Code, message: String, endpoint: String? = nil) {
        self.code = code
        self.message = message
        self.endpoint = endpoint
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// An error code: the protocol's codes as sent, plus the SDK's. A struct, not
    /// an enum, so codes added by a later gateway still arrive intact.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        // The protocol's codes.
        public static let badRequest = Code(rawValue: "bad_request")
        public static let unknownType = Code(rawValue: "unknown_type")
        public static let invalidEndpoint = Code(rawValue: "invalid_endpoint")
        public static let unknownTopic = Code(rawValue: "unknown_topic")
        public static let forbidden = Code(rawValue: "forbidden")
        public static let unauthorized = Code(rawValue: "unauthorized")
        public static let tokenExpired = Code(rawValue: "token_expired")
        public static let rateLimited = Code(rawValue: "rate_limited")
        public static let publishFailed = Code(rawValue: "publish_failed")
        public static let tooManyRequests = Code(rawValue: "too_many_requests")
        public static let tooManySubscriptions = Code(rawValue: "too_many_subscriptions")
        public static let replayTooLarge = Code(rawValue: "replay_too_large")
        public static let replayFailed = Code(rawValue: "replay_failed")
        public static let resumeUnavailable = Code(rawValue: "resume_unavailable")

        // The SDK's codes.
        /// The connection was lost before the answer came (a publish may have been produced).
        public static let disconnected = Code(rawValue: "disconnected")
        /// No answer within `requestTimeout`.
        public static let timeout = Code(rawValue: "timeout")
        /// The client was closed.
        public static let closed = Code(rawValue: "closed")
        /// The token provider threw.
        public static let tokenProvider = Code(rawValue: "token_provider")
        /// The configuration cannot work (the message names the setting).
        public static let badOptions = Code(rawValue: "bad_options")
        /// The gateway ended the subscription because the connection's new rights no longer allow it.
        public static let revoked = Code(rawValue: "revoked")
    }
}
