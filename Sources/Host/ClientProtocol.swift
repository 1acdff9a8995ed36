import Foundation
import StreamgatePluginAPI

/// Client protocol v1 control messages (docs/protocol.md): JSON text frames.
/// Deliveries are binary frames, built by `DeliveryFrame`.
enum ClientProtocol {
    static let name = "streamgate.v1"

    /// A request from a client.
    enum Request: Equatable {
        case subscribe(endpoint: String, id: JSONValue?)
        case unsubscribe(endpoint: String, id: JSONValue?)
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
        case "subscribe", "unsubscribe":
            guard case .string(let endpoint)? = fields["endpoint"] else {
                throw RequestError(code: .badRequest, message: "\(type) needs an \"endpoint\" string", id: id)
            }
            return type == "subscribe" ? .subscribe(endpoint: endpoint, id: id) : .unsubscribe(endpoint: endpoint, id: id)
        default:
            throw RequestError(
                code: .unknownType, message: "unknown request type \(jsonString(type)); expected subscribe or unsubscribe",
                id: id)
        }
    }

    // MARK: Replies

    static func welcome() -> String {
        #"{"type":"welcome","protocol":"\#(name)"}"#
    }

    static func subscribed(endpoint: String, id: JSONValue?) -> String {
        reply(type: "subscribed", fields: [("endpoint", jsonString(endpoint))], id: id)
    }

    static func unsubscribed(endpoint: String, id: JSONValue?) -> String {
        reply(type: "unsubscribed", fields: [("endpoint", jsonString(endpoint))], id: id)
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
