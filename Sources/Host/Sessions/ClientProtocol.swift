import Foundation
import StreamgatePluginAPI

/// Client protocol v1 control messages (docs/protocol.md): JSON text frames.
/// Deliveries are binary frames, built by `DeliveryFrame`.
enum ClientProtocol {
    static let name = "streamgate.v1"

    /// A request from a client.
    enum Request: Equatable {
        case subscribe(endpoint: String, id: JSONValue?, options: SubscribeOptions = SubscribeOptions())
        case unsubscribe(endpoint: String, id: JSONValue?)
        /// New credentials for this connection (a token refresh).
        case auth(token: String, id: JSONValue?)
        /// A record to produce to the endpoint's topic and key.
        /// `traceParent`: the W3C trace context the record should carry (checked
        /// only when the gateway forwards trace context).
        case publish(endpoint: String, payload: [UInt8], traceParent: String?, id: JSONValue?)
        /// A liveness check: answered `pong` (clients cannot see WebSocket
        /// pings in browsers, so they ask at the application level).
        case ping(id: JSONValue?)
    }

    /// Error codes of error frames; stable strings clients can switch on.
    enum ErrorCode: String {
        case badRequest = "bad_request"
        case unknownType = "unknown_type"
        case invalidEndpoint = "invalid_endpoint"
        case unknownTopic = "unknown_topic"
        case forbidden = "forbidden"
        case unsupported = "unsupported"
        case tooManySubscriptions = "too_many_subscriptions"
        case replayTooLarge = "replay_too_large"
        case replayFailed = "replay_failed"
        case resumeUnavailable = "resume_unavailable"
        case unauthorized = "unauthorized"
        case tokenExpired = "token_expired"
        case tooManyRequests = "too_many_requests"
        case publishFailed = "publish_failed"
        case rateLimited = "rate_limited"
    }

    struct RequestError: Error, Equatable {
        let code: ErrorCode
        let message: String
        var id: JSONValue? = nil
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws(RequestError) -> Request {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw RequestError(code: .badRequest, message: "a request must be a JSON object")
        }
        guard case .object(let fields) = value else {
            throw RequestError(code: .badRequest, message: "a request must be a JSON object")
        }
        let id = fields["id"]
        if let id {
            switch id {
            case .string, .number: break
            default: throw RequestError(code: .badRequest, message: "\"id\" must be a string or a number")
            }
        }
        guard case .string(let type)? = fields["type"] else {
            throw RequestError(code: .badRequest, message: "a request needs a \"type\" string", id: id)
        }
        switch type {
        case "publish":
            guard case .string(let endpoint)? = fields["endpoint"] else {
                throw RequestError(code: .badRequest, message: "publish needs an \"endpoint\" string", id: id)
            }
            var traceParent: String?
            switch fields["traceparent"] {
            case nil: break
            case .string(let value)?: traceParent = value
            default: throw RequestError(code: .badRequest, message: "\"traceparent\" must be a string", id: id)
            }
            switch (fields["payload"], fields["payload_base64"]) {
            case (.string(let text)?, nil):
                return .publish(endpoint: endpoint, payload: Array(text.utf8), traceParent: traceParent, id: id)
            case (nil, .string(let encoded)?):
                guard let data = Data(base64Encoded: encoded) else {
                    throw RequestError(code: .badRequest, message: "\"payload_base64\" is not valid base64", id: id)
                }
                return .publish(endpoint: endpoint, payload: [UInt8](data), traceParent: traceParent, id: id)
            default:
                throw RequestError(
                    code: .badRequest, message: "publish needs exactly one of \"payload\" (a string) or \"payload_base64\"", id: id)
            }
        case "auth":
            guard case .string(let token)? = fields["token"], !token.isEmpty else {
                throw RequestError(code: .badRequest, message: "auth needs a non-empty \"token\" string", id: id)
            }
            return .auth(token: token, id: id)
        case "ping":
            return .ping(id: id)
        case "subscribe", "unsubscribe":
            guard case .string(let endpoint)? = fields["endpoint"] else {
                throw RequestError(code: .badRequest, message: "\(type) needs an \"endpoint\" string", id: id)
            }
            guard type == "subscribe" else { return .unsubscribe(endpoint: endpoint, id: id) }
            return .subscribe(endpoint: endpoint, id: id, options: try subscribeOptions(fields, id: id))
        default:
            throw RequestError(
                code: .unknownType, message: "unknown request type \(jsonString(type)); expected subscribe, unsubscribe, publish, auth or ping",
                id: id)
        }
    }

    /// `from` (resume after a position) and `snapshot` (latest message first).
    private static func subscribeOptions(_ fields: [String: JSONValue], id: JSONValue?) throws(RequestError)
        -> SubscribeOptions
    {
        var options = SubscribeOptions()
        switch fields["snapshot"] {
        case nil, .null?: break
        case .bool(let flag)?: options.snapshot = flag
        default: throw RequestError(code: .badRequest, message: "\"snapshot\" must be true or false", id: id)
        }
        switch fields["from"] {
        case nil, .null?: break
        case .object(let from)?:
            guard case .string(let epoch)? = from["epoch"], !epoch.isEmpty else {
                throw RequestError(code: .badRequest, message: "\"from.epoch\" must be the epoch string of a delivery", id: id)
            }
            guard case .number(let n)? = from["seq"], n == n.rounded(), n >= -1, n < 9.007_199_254_740_992e15 else {
                throw RequestError(code: .badRequest, message: "\"from.seq\" must be the integer seq of a delivery (or -1)", id: id)
            }
            options.resume = ResumePosition(epoch: epoch, seq: Int64(n))
        default:
            throw RequestError(code: .badRequest, message: "\"from\" must be an object {\"epoch\": ..., \"seq\": ...}", id: id)
        }
        return options
    }

    // MARK: Replies

    /// Sent once the connection's credentials were checked: who it is, and
    /// until when (seconds since the Unix epoch; null: no expiry).
    /// `traceContext`: deliveries may carry their record's `traceparent`
    /// (`tracing.propagate`); the field is absent otherwise.
    static func welcome(identity: Identity, traceContext: Bool = false) -> String {
        reply(type: "welcome", fields: [("protocol", jsonString(name))] + identityFields(identity)
                + (traceContext ? [("trace_context", "true")] : []), id: nil)
    }

    /// The answer to a `ping`.
    static func pong(id: JSONValue?) -> String {
        reply(type: "pong", fields: [], id: id)
    }

    /// The answer to an `auth` request that was accepted.
    static func authenticated(identity: Identity, id: JSONValue?) -> String {
        reply(type: "authenticated", fields: identityFields(identity), id: id)
    }

    /// A publish was acknowledged by Kafka: where the record landed.
    static func published(endpoint: String, partition: Int32, offset: Int64, id: JSONValue?) -> String {
        reply(type: "published", fields: [
            ("endpoint", jsonString(endpoint)), ("partition", String(partition)), ("offset", String(offset)),
        ], id: id)
    }

    /// The connection's token expires soon: send a new one with `auth`.
    static func tokenExpiring(expiresAt: Double) -> String {
        reply(type: "token_expiring", fields: [
            ("expires_at", String(Int64(expiresAt))),
            ("message", jsonString("the token expires at \(Int64(expiresAt)); send a new one with {\"type\": \"auth\", \"token\": ...}")),
        ], id: nil)
    }

    /// The node drains: the client should reconnect elsewhere within the
    /// window and resume (docs/protocol.md, "Moving to another node").
    static func moving(reconnectWithinMs: Int) -> String {
        reply(type: "moving", fields: [
            ("reason", jsonString("draining")), ("reconnect_within_ms", String(reconnectWithinMs)),
            ("message", jsonString("this node is shutting down: reconnect to another node and resume")),
        ], id: nil)
    }

    /// A subscription the connection's new rights no longer allow was ended.
    static func revoked(endpoint: String, reason: String) -> String {
        reply(type: "unsubscribed", fields: [("endpoint", jsonString(endpoint)), ("reason", jsonString(reason))], id: nil)
    }

    private static func identityFields(_ identity: Identity) -> [(String, String)] {
        [("subject", jsonString(identity.subject)),
         ("expires_at", identity.expiresAt.map { String(Int64($0)) } ?? "null")]
    }

    static func subscribed(endpoint: String, id: JSONValue?) -> String {
        reply(type: "subscribed", fields: [("endpoint", jsonString(endpoint))], id: id)
    }

    static func unsubscribed(endpoint: String, id: JSONValue?) -> String {
        reply(type: "unsubscribed", fields: [("endpoint", jsonString(endpoint))], id: id)
    }

    /// A live subscription's log was replaced (topic re-created, partitions
    /// changed, a broker back with an empty log): the positions it holds no
    /// longer resume; delivery goes on from the new log's first offset.
    static func logReplaced(endpoint: String, epoch: String, current: String) -> String {
        staleEpochNotice(endpoint: endpoint, epoch: epoch, current: current, message: "the endpoint's log was replaced (topic re-created, partitions changed or the broker lost its log): positions in the old epoch no longer resume, and what it held beyond them is gone; delivery goes on from the new log's first message")
    }

    /// The client's position belongs to an offset sequence that is not (or
    /// no longer) the endpoint's: its seq cannot be compared; live follows.
    static func staleEpoch(endpoint: String, epoch: String, current: String?) -> String {
        staleEpochNotice(endpoint: endpoint, epoch: epoch, current: current, message: "the position's epoch is not current (topic re-created, partitions changed or another cluster); delivery goes on live from now")
    }

    private static func staleEpochNotice(endpoint: String, epoch: String, current: String?, message: String) -> String {
        reply(type: "notice", fields: [
            ("code", jsonString("stale_epoch")), ("endpoint", jsonString(endpoint)), ("epoch", jsonString(epoch)),
            ("current_epoch", current.map(jsonString) ?? "null"), ("message", jsonString(message)),
        ], id: nil)
    }

    /// Messages with seq in fromSeq...toSeq may have existed and cannot be delivered.
    static func gap(endpoint: String, epoch: String, fromSeq: Int64, toSeq: Int64, reason: String) -> String {
        reply(type: "notice", fields: [
            ("code", jsonString("gap")), ("endpoint", jsonString(endpoint)), ("epoch", jsonString(epoch)),
            ("from_seq", String(fromSeq)), ("to_seq", String(toSeq)),
            ("message", jsonString("messages with seq \(fromSeq) to \(toSeq) cannot be replayed: \(reason)")),
        ], id: nil)
    }

    /// Live delivery starts after `(epoch, seq)`: every later message of the
    /// endpoint follows, none at or before it. A client that has received
    /// nothing yet keeps it as its resume position, so a failover before its
    /// first message still resumes exactly.
    static func live(endpoint: String, epoch: String, seq: Int64) -> String {
        reply(type: "live", fields: [
            ("endpoint", jsonString(endpoint)), ("epoch", jsonString(epoch)), ("seq", String(seq)),
        ], id: nil)
    }

    /// The end of a replay: what follows is live.
    static func replayed(endpoint: String, count: Int, source: String) -> String {
        reply(type: "replayed", fields: [
            ("endpoint", jsonString(endpoint)), ("count", String(count)), ("source", jsonString(source)),
        ], id: nil)
    }

    static func error(_ code: ErrorCode, _ message: String, endpoint: String? = nil, id: JSONValue?) -> String {
        var fields = [("code", jsonString(code.rawValue)), ("message", jsonString(message))]
        if let endpoint { fields.append(("endpoint", jsonString(endpoint))) }
        return reply(type: "error", fields: fields, id: id)
    }

    private static func reply(type: String, fields: [(String, String)], id: JSONValue?) -> String {
        var out = #"{"type":"\#(type)""#
        for (key, value) in fields { out += #","\#(key)":"# + value }
        if let id { out += #","id":"# + jsonLiteral(id) }
        return out + "}"
    }

    /// A JSON string literal (RFC 8259 escaping).
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func jsonLiteral(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return jsonString(s)
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        default: return "null"
        }
    }
}

/// A client's last seen position on an endpoint.
struct ResumePosition: Equatable, Sendable {
    let epoch: String
    let seq: Int64
}

/// What a subscribe asks for beyond live messages.
struct SubscribeOptions: Equatable, Sendable {
    var resume: ResumePosition?
    /// Deliver the endpoint's latest message first, marked as a snapshot.
    var snapshot = false
}
