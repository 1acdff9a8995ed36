import CFanout

/// Builds the binary delivery frame of protocol v1 (docs/protocol.md), once
/// per message, directly into the refcounted C frame every subscriber shares.
///
///     offset  size  field
///     0       1     kind = 1 (message)
///     1       1     flags (bit 0: snapshot; bit 1: trace context follows the epoch)
///     2       2     endpoint length E (big-endian)
///     4       2     epoch length P (big-endian)
///     6       8     seq (big-endian, the Kafka offset)
///     14      8     timestamp, ms since the Unix epoch (big-endian, -1 unknown)
///     22      E     endpoint (UTF-8)
///     22+E    P     epoch (ASCII)
///     with bit 1:   1 byte T, then T bytes of the record's W3C `traceparent`
///     then    …     payload, byte for byte as produced
enum DeliveryFrame {
    static let kindMessage: UInt8 = 1
    static let flagSnapshot: UInt8 = 1
    static let flagTraceContext: UInt8 = 2
    static let fixedHeaderBytes = 22

    /// Returns a `cf_frame` owning one reference, or nil if out of memory or
    /// a name is too long for its 16-bit length.
    static func make(endpoint: String, epoch: String, seq: Int64, timestampMs: Int64, flags: UInt8 = 0,
                     traceParent: UnsafeRawBufferPointer? = nil, payload: UnsafeRawBufferPointer) -> OpaquePointer?
    {
        var endpoint = endpoint
        var epoch = epoch
        return endpoint.withUTF8 { name in
            epoch.withUTF8 { epochBytes -> OpaquePointer? in
                guard name.count <= Int(UInt16.max), epochBytes.count <= Int(UInt16.max),
                      (traceParent?.count ?? 0) <= Int(UInt8.max)
                else { return nil }
                let trace = traceParent.map { 1 + $0.count } ?? 0
                let total = fixedHeaderBytes + name.count + epochBytes.count + trace + payload.count
                var out: UnsafeMutablePointer<UInt8>?
                let frame = name.withMemoryRebound(to: CChar.self) {
                    cf_frame_create(0, total, $0.baseAddress, $0.count, &out)
                }
                guard let frame, let out else { return nil }
                out[0] = kindMessage
                out[1] = traceParent == nil ? flags : flags | flagTraceContext
                store(UInt16(name.count), at: out + 2)
                store(UInt16(epochBytes.count), at: out + 4)
                store(UInt64(bitPattern: seq), at: out + 6)
                store(UInt64(bitPattern: timestampMs), at: out + 14)
                var cursor = out + fixedHeaderBytes
                func append(_ part: UnsafeRawBufferPointer) {
                    guard part.count > 0 else { return }
                    UnsafeMutableRawPointer(cursor).copyMemory(from: part.baseAddress!, byteCount: part.count)
                    cursor += part.count
                }
                append(UnsafeRawBufferPointer(name))
                append(UnsafeRawBufferPointer(epochBytes))
                if let traceParent {
                    cursor.pointee = UInt8(traceParent.count)
                    cursor += 1
                    append(traceParent)
                }
                append(payload)
                return frame
            }
        }
    }

    /// A copy of a cached delivery frame with the snapshot flag set.
    static func snapshotCopy(of frame: OpaquePointer) -> OpaquePointer? {
        var length = 0
        guard let bytes = cf_frame_bytes(frame, &length) else { return nil }
        return withSnapshotFlag(UnsafeRawBufferPointer(start: bytes, count: length))
    }

    /// A new frame with the bytes of an encoded delivery frame (WebSocket
    /// header included) and the snapshot flag set, or nil.
    static func withSnapshotFlag(_ encoded: UnsafeRawBufferPointer) -> OpaquePointer? {
        var header = cf_ws_header()
        guard let base = encoded.baseAddress, encoded.count > 0,
              cf_ws_parse_header(base.assumingMemoryBound(to: UInt8.self), encoded.count, &header) == 1,
              header.header_length + Int(header.payload_length) == encoded.count, header.payload_length > 1
        else { return nil }
        let payload = UnsafeRawBufferPointer(rebasing: encoded[header.header_length...])
        var out: UnsafeMutablePointer<UInt8>?
        guard let frame = cf_frame_create(0, payload.count, nil, 0, &out), let out else { return nil }
        UnsafeMutableRawPointer(out).copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        out[1] |= flagSnapshot
        return frame
    }

    /// A text frame fanned out to `endpoint`'s subscribers like a delivery
    /// (a notice about the endpoint), owning one reference; nil when out of memory.
    static func text(_ text: String, endpoint: String) -> OpaquePointer? {
        var text = text, endpoint = endpoint
        return text.withUTF8 { bytes in
            endpoint.withUTF8 { name -> OpaquePointer? in
                var out: UnsafeMutablePointer<UInt8>?
                guard let frame = name.withMemoryRebound(to: CChar.self, { cf_frame_create(1, bytes.count, $0.baseAddress, $0.count, &out) }),
                      let out
                else { return nil }
                if let base = bytes.baseAddress { out.update(from: base, count: bytes.count) }
                return frame
            }
        }
    }

    private static func store<T: FixedWidthInteger>(_ value: T, at pointer: UnsafeMutablePointer<UInt8>) {
        withUnsafeBytes(of: value.bigEndian) { bytes in
            UnsafeMutableRawPointer(pointer).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
    }
}
