import NIOCore

/// Reads the gateway's binary delivery frames (`docs/protocol.md`, "delivery"):
/// a 22-byte big-endian header, the endpoint, the epoch, the trace context when
/// flag bit 1 says so (a length byte and the `traceparent`), then the payload.
enum DeliveryFrame {
    static let headerSize = 22
    static let kindMessage: UInt8 = 1
    static let flagSnapshot: UInt8 = 1
    static let flagTraceContext: UInt8 = 2

    /// The message in `frame`; nil when it is not a message frame or is cut short
    /// (a later protocol's frame kinds are ignored, not fatal).
    static func parse(_ frame: ByteBuffer) -> Message? {
        let start = frame.readerIndex
        guard frame.readableBytes >= headerSize,
              let kind = frame.getInteger(at: start, as: UInt8.self), kind == kindMessage,
              let flags = frame.getInteger(at: start + 1, as: UInt8.self),
              let endpointLength = frame.getInteger(at: start + 2, as: UInt16.self),
              let epochLength = frame.getInteger(at: start + 4, as: UInt16.self),
              let seq = frame.getInteger(at: start + 6, as: UInt64.self),
              let timestamp = frame.getInteger(at: start + 14, as: Int64.self)
        else { return nil }
        let endpointStart = start + headerSize
        let epochStart = endpointStart + Int(endpointLength)
        var payloadStart = epochStart + Int(epochLength)
        let end = start + frame.readableBytes
        var traceParent: String?
        if flags & flagTraceContext != 0 {
            guard payloadStart < end, let length = frame.getInteger(at: payloadStart, as: UInt8.self),
                  payloadStart + 1 + Int(length) <= end,
                  let value = frame.getString(at: payloadStart + 1, length: Int(length))
            else { return nil }
            traceParent = value
            payloadStart += 1 + Int(length)
        }
        guard payloadStart <= end,
              let endpoint = frame.getString(at: endpointStart, length: Int(endpointLength)),
              let epoch = frame.getString(at: epochStart, length: Int(epochLength)),
              let payload = frame.getBytes(at: payloadStart, length: end - payloadStart)
        else { return nil }
        return Message(endpoint: endpoint, epoch: epoch, seq: Int64(truncatingIfNeeded: seq), timestamp: timestamp,
                       isSnapshot: flags & flagSnapshot != 0, payload: payload, traceParent: traceParent)
    }
}
