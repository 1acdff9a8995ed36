import CFanout
import Testing

@Suite("cf_frame")
struct FrameTests {
    static func frameBytes(_ frame: OpaquePointer) -> [UInt8] {
        var length = 0
        let p = cf_frame_bytes(frame, &length)
        return Array(UnsafeBufferPointer(start: p, count: length))
    }

    @Test(arguments: [0, 1, 125, 126, 65535, 65536, 70000], [true, false])
    func frameIsServerHeaderPlusPayload(size: Int, isText: Bool) throws {
        let endpoint = Array("/scores/live".utf8).map { CChar(bitPattern: $0) }
        var payloadOut: UnsafeMutablePointer<UInt8>?
        let frame = try #require(cf_frame_create(isText ? 1 : 0, size, endpoint, endpoint.count, &payloadOut))
        defer { cf_frame_release(frame) }
        let payloadPtr = try #require(payloadOut)
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        payload.withUnsafeBufferPointer { src in
            if size > 0 { payloadPtr.update(from: src.baseAddress!, count: size) }
        }

        let bytes = Self.frameBytes(frame)
        let header = try #require(parseHeader(bytes))
        #expect(header.masked == 0)
        #expect(header.fin == 1)
        #expect(header.rsv == 0)
        #expect(header.opcode == (isText ? 1 : 2))
        #expect(header.payload_length == UInt64(size))
        let expectedHeaderLength = size < 126 ? 2 : (size <= 65535 ? 4 : 10)
        #expect(header.header_length == expectedHeaderLength)
        #expect(bytes.count == header.header_length + size)
        #expect(Array(bytes[header.header_length...]) == payload)

        // The payload pointer handed out points into the frame's bytes, right after the header.
        var length = 0
        let base = try #require(cf_frame_bytes(frame, &length))
        #expect(UnsafePointer(payloadPtr) == base + header.header_length)
    }

    @Test func nullEndpointAndNilLengthOut() throws {
        var payloadOut: UnsafeMutablePointer<UInt8>?
        let frame = try #require(cf_frame_create(1, 3, nil, 0, &payloadOut))
        defer { cf_frame_release(frame) }
        payloadOut?.update(from: [0x61, 0x62, 0x63], count: 3)
        let p = try #require(cf_frame_bytes(frame, nil))
        #expect(Array(UnsafeBufferPointer(start: p, count: 5)) == [0x81, 0x03, 0x61, 0x62, 0x63])
    }

    @Test func retainKeepsBytesAliveAcrossReleases() throws {
        var payloadOut: UnsafeMutablePointer<UInt8>?
        let frame = try #require(cf_frame_create(0, 4, nil, 0, &payloadOut))
        payloadOut?.update(from: [1, 2, 3, 4], count: 4)
        let before = Self.frameBytes(frame)
        let same = try #require(cf_frame_retain(frame))
        #expect(same == frame)
        _ = cf_frame_retain(frame)
        cf_frame_release(frame)
        cf_frame_release(frame)
        // One reference is left: the bytes are still the same.
        #expect(Self.frameBytes(frame) == before)
        #expect(before == [0x82, 0x04, 1, 2, 3, 4])
        cf_frame_release(frame)
        cf_frame_release(nil)  // documented no-op on NULL in frame.c
    }

    @Test func concurrentRetainRelease() async throws {
        var payloadOut: UnsafeMutablePointer<UInt8>?
        let frame = try #require(cf_frame_create(0, 8, nil, 0, &payloadOut))
        payloadOut?.update(repeating: 0xAB, count: 8)
        let expected = Self.frameBytes(frame)
        let address = UInt(bitPattern: frame)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let f = OpaquePointer(bitPattern: address)!
                    for _ in 0..<10_000 {
                        _ = cf_frame_retain(f)
                        cf_frame_release(f)
                    }
                }
            }
        }
        #expect(Self.frameBytes(frame) == expected)
        cf_frame_release(frame)
    }

    @Test func endpointTooLongForItsLengthIsRefused() {
        let endpoint = [CChar](repeating: 0x61, count: Int(UInt16.max) + 1)
        var payloadOut: UnsafeMutablePointer<UInt8>?
        let frame = cf_frame_create(0, 1, endpoint, endpoint.count, &payloadOut)
        #expect(frame == nil)
        if let frame { cf_frame_release(frame) }
    }
}
