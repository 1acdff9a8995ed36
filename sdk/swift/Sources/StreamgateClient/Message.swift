#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a message stands in its endpoint's sequence. Store it, and pass it back
/// as `subscribe(_:from:)` to resume after it on any node of the cluster.
public struct Position: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Names the offset sequence (Kafka cluster, topic, partition): opaque, compare for equality only.
    public var epoch: String
    /// The record's Kafka partition offset; increases within an endpoint. `-1` means
    /// "from the beginning of what a node can replay".
    public var seq: Int64

    public init(epoch: String, seq: Int64) {
        self.epoch = epoch
        self.seq = seq
    }

    public var description: String { "\(epoch)/\(seq)" }
}

/// One delivered message: a Kafka record of the subscribed endpoint, byte for byte.
public struct Message: Sendable, Hashable {
    public var endpoint: String
    public var epoch: String
    /// The record's Kafka partition offset.
    public var seq: Int64
    /// The record's Kafka timestamp, ms since the Unix epoch; -1 when unknown.
    public var timestamp: Int64
    /// The latest message, sent first because the subscription asked for a snapshot.
    public var isSnapshot: Bool
    /// The record's value, unchanged (may be empty).
    public var payload: [UInt8]
    /// The record's W3C trace context (its `traceparent` header), when the gateway
    /// forwards trace context (`tracing.propagate`) and the record had one: continue
    /// the producer's trace with it.
    public var traceParent: String?

    public init(endpoint: String, epoch: String, seq: Int64, timestamp: Int64, isSnapshot: Bool, payload: [UInt8],
                traceParent: String? = nil) {
        self.endpoint = endpoint
        self.epoch = epoch
        self.seq = seq
        self.timestamp = timestamp
        self.isSnapshot = isSnapshot
        self.payload = payload
        self.traceParent = traceParent
    }

    public var position: Position { Position(epoch: epoch, seq: seq) }

    /// The payload as UTF-8 text; nil when it is not valid UTF-8.
    public var text: String? { String(validating: payload, as: UTF8.self) }

    /// The payload decoded from JSON.
    public func decode<Value: Decodable>(_ type: Value.Type, using decoder: JSONDecoder = JSONDecoder()) throws -> Value {
        try decoder.decode(Value.self, from: Data(payload))
    }
}

/// Kafka's acknowledgement of a published record.
public struct Published: Sendable, Hashable {
    /// The endpoint in the gateway's canonical form.
    public var endpoint: String
    public var partition: Int
    /// The record's offset: the `seq` subscribers see for it.
    public var offset: Int64
}
