#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A request to the gateway, as a JSON text frame (`docs/protocol.md`). Absent
/// fields are left out of the JSON.
struct Request: Encodable, Sendable {
    var type: String
    var id: Int?
    var endpoint: String?
    var from: Position?
    var snapshot: Bool?
    var token: String?
    var payload: String?
    var payloadBase64: String?
    var traceParent: String?

    enum CodingKeys: String, CodingKey {
        case type, id, endpoint, from, snapshot, token, payload
        case payloadBase64 = "payload_base64", traceParent = "traceparent"
    }

    func json() -> String {
        // Encoding strings, integers and booleans cannot fail.
        String(decoding: (try? JSONEncoder().encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The liveness ping; its id is a string so that its `pong` never matches a request.
    static let livenessPing = #"{"type":"ping","id":"streamgate-sdk-ping"}"#
}

/// Any control frame from the gateway: the union of every reply's fields.
struct Reply: Decodable, Sendable {
    var type: String
    /// The id of the request it answers, when that was one of the SDK's (integer) ids.
    var id: Int?
    var code: String?
    var message: String?
    var endpoint: String?
    var subject: String?
    var expiresAt: Double?
    var partition: Int?
    var offset: Int64?
    var count: Int?
    var source: String?
    var currentEpoch: String?
    var fromSeq: Int64?
    var toSeq: Int64?
    var reason: String?
    var epoch: String?
    var seq: Int64?
    var reconnectWithinMs: Int?

    enum CodingKeys: String, CodingKey {
        case type, id, code, message, endpoint, subject, partition, offset, count, source, reason, epoch, seq
        case expiresAt = "expires_at", currentEpoch = "current_epoch", fromSeq = "from_seq", toSeq = "to_seq"
        case reconnectWithinMs = "reconnect_within_ms"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        // Ids of other shapes (the liveness ping's string) belong to no pending request.
        id = try? c.decodeIfPresent(Int.self, forKey: .id)
        code = try c.decodeIfPresent(String.self, forKey: .code)
        message = try c.decodeIfPresent(String.self, forKey: .message)
        endpoint = try c.decodeIfPresent(String.self, forKey: .endpoint)
        subject = try c.decodeIfPresent(String.self, forKey: .subject)
        expiresAt = try c.decodeIfPresent(Double.self, forKey: .expiresAt)
        partition = try c.decodeIfPresent(Int.self, forKey: .partition)
        offset = try c.decodeIfPresent(Int64.self, forKey: .offset)
        count = try c.decodeIfPresent(Int.self, forKey: .count)
        source = try c.decodeIfPresent(String.self, forKey: .source)
        currentEpoch = try c.decodeIfPresent(String.self, forKey: .currentEpoch)
        fromSeq = try c.decodeIfPresent(Int64.self, forKey: .fromSeq)
        toSeq = try c.decodeIfPresent(Int64.self, forKey: .toSeq)
        reason = try c.decodeIfPresent(String.self, forKey: .reason)
        epoch = try c.decodeIfPresent(String.self, forKey: .epoch)
        seq = try c.decodeIfPresent(Int64.self, forKey: .seq)
        reconnectWithinMs = try? c.decodeIfPresent(Int.self, forKey: .reconnectWithinMs)
    }

    /// Nil when the frame is not a JSON object with a `type` (ignored: a later
    /// protocol may send what this SDK does not know).
    static func parse(_ text: String) -> Reply? {
        try? JSONDecoder().decode(Reply.self, from: Data(text.utf8))
    }

    /// The error this reply carries, for `type == "error"`.
    var error: StreamgateError {
        StreamgateError(code: .init(rawValue: code ?? "error"), message: message ?? "", endpoint: endpoint)
    }
}
