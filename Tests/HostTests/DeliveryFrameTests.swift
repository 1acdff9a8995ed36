import CFanout
import Testing

@testable import streamgate

struct DecodedDelivery {
    var opcode: UInt8
    var masked: UInt8
    var fin: UInt8
    var body: [UInt8]
}

/// Reads the bytes of a cf_frame and splits off its WebSocket header.
func decodeFrame(_ frame: OpaquePointer) throws -> DecodedDelivery {
    var length = 0
    let base = try #require(cf_frame_bytes(frame, &length))
    let bytes = Array(UnsafeBufferPointer(start: base, count: length))
    var h = cf_ws_header()
    let ok = bytes.withUnsafeBufferPointer { cf_ws_parse_header($0.baseAddress, $0.count, &h) }
    try #require(ok == 1)
    #expect(UInt64(bytes.count - h.header_length) == h.payload_length)
    return DecodedDelivery(opcode: h.opcode, masked: h.masked, fin: h.fin, body: Array(bytes[h.header_length...]))
}

func bigEndian<T: FixedWidthInteger>(_ bytes: ArraySlice<UInt8>, as: T.Type) -> T {
    bytes.reduce(T.zero) { ($0 << 8) | T($1) }
}

@Suite("DeliveryFrame")
struct DeliveryFrameTests {
    @Test func layoutWithAllByteValues() throws {
        let payload = [UInt8]((0...255).map { UInt8($0) })
        let endpoint = "/scores/live/football"
        let epoch = "p3-e1700000000"
        let seq: Int64 = 0x0102_0304_0506_0708
        let ts: Int64 = 1_700_000_000_123
        let frame = try #require(payload.withUnsafeBytes {
            DeliveryFrame.make(endpoint: endpoint, epoch: epoch, seq: seq, timestampMs: ts, payload: $0)
        })
        defer { cf_frame_release(frame) }
        let d = try decodeFrame(frame)
        #expect(d.opcode == 2)
        #expect(d.masked == 0)
        #expect(d.fin == 1)
        let b = d.body
        let e = endpoint.utf8.count, p = epoch.utf8.count
        try #require(b.count == 22 + e + p + payload.count)
        #expect(b[0] == 1)
        #expect(b[1] == 0)
        #expect(bigEndian(b[2..<4], as: UInt16.self) == UInt16(e))
        #expect(bigEndian(b[4..<6], as: UInt16.self) == UInt16(p))
        #expect(Array(b[6..<14]) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(bigEndian(b[6..<14], as: UInt64.self) == UInt64(seq))
        #expect(bigEndian(b[14..<22], as: Int64.self) == ts)
        #expect(String(decoding: b[22..<(22 + e)], as: UTF8.self) == endpoint)
        #expect(String(decoding: b[(22 + e)..<(22 + e + p)], as: UTF8.self) == epoch)
        #expect(Array(b[(22 + e + p)...]) == payload)
    }

    @Test func unknownTimestampAndFlags() throws {
        let payload: [UInt8] = [0x7B, 0x7D]
        let frame = try #require(payload.withUnsafeBytes {
            DeliveryFrame.make(endpoint: "/t/ké", epoch: "e", seq: 0, timestampMs: -1, flags: 1, payload: $0)
        })
        defer { cf_frame_release(frame) }
        let b = try decodeFrame(frame).body
        #expect(b[1] == 1, "snapshot flag")
        #expect(bigEndian(b[2..<4], as: UInt16.self) == 6, "endpoint length is in UTF-8 bytes")
        #expect(Array(b[6..<14]) == [UInt8](repeating: 0, count: 8))
        #expect(Array(b[14..<22]) == [UInt8](repeating: 0xFF, count: 8))
        #expect(Array(b[22..<28]) == Array("/t/ké".utf8))
        #expect(b[28] == UInt8(ascii: "e"))
        #expect(Array(b[29...]) == payload)
    }

    @Test(arguments: [0, 1, 100, 104, 65_513, 65_514, 70_000])
    func payloadSizesAcrossHeaderLengths(size: Int) throws {
        // 22 + len("/t/k")=4 + len("ep")=2 = 28 bytes before the payload.
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 * 13) }
        let frame = try #require(payload.withUnsafeBytes {
            DeliveryFrame.make(endpoint: "/t/k", epoch: "ep", seq: Int64(size), timestampMs: 5, payload: $0)
        })
        defer { cf_frame_release(frame) }
        let d = try decodeFrame(frame)
        #expect(d.opcode == 2)
        #expect(d.body.count == 28 + size)
        #expect(bigEndian(d.body[6..<14], as: Int64.self) == Int64(size))
        #expect(Array(d.body[28...]) == payload)
    }

    @Test func emptyPayloadFromNilBuffer() throws {
        let frame = try #require(DeliveryFrame.make(
            endpoint: "/t/k", epoch: "", seq: 1, timestampMs: 2, payload: UnsafeRawBufferPointer(start: nil, count: 0)))
        defer { cf_frame_release(frame) }
        let b = try decodeFrame(frame).body
        #expect(b.count == 22 + 4)
        #expect(bigEndian(b[4..<6], as: UInt16.self) == 0)
        #expect(Array(b[22...]) == Array("/t/k".utf8))
    }

    @Test func emptyEndpointAndEpoch() throws {
        let payload: [UInt8] = [9, 8, 7]
        let frame = try #require(payload.withUnsafeBytes {
            DeliveryFrame.make(endpoint: "", epoch: "", seq: -1, timestampMs: 0, payload: $0)
        })
        defer { cf_frame_release(frame) }
        let b = try decodeFrame(frame).body
        #expect(b.count == 22 + 3)
        #expect(Array(b[2..<6]) == [0, 0, 0, 0])
        #expect(Array(b[6..<14]) == [UInt8](repeating: 0xFF, count: 8), "seq is written as its bit pattern")
        #expect(Array(b[22...]) == payload)
    }

    @Test func tooLongEndpointOrEpochIsRefused() {
        let long = String(repeating: "x", count: Int(UInt16.max) + 1)
        let payload: [UInt8] = [1]
        let a = payload.withUnsafeBytes { DeliveryFrame.make(endpoint: long, epoch: "e", seq: 0, timestampMs: 0, payload: $0) }
        #expect(a == nil)
        let b = payload.withUnsafeBytes { DeliveryFrame.make(endpoint: "/t/k", epoch: long, seq: 0, timestampMs: 0, payload: $0) }
        #expect(b == nil)
        if let a { cf_frame_release(a) }
        if let b { cf_frame_release(b) }
    }
}
