import CFanout
import Testing

@Suite("cf_ws_parse_header / cf_ws_write_header")
struct WebSocketHeaderTests {
    @Test func sevenBitLengthUnmasked() throws {
        let h = try #require(parseHeader([0x81, 0x05]))
        #expect(h.fin == 1)
        #expect(h.rsv == 0)
        #expect(h.opcode == 1)
        #expect(h.masked == 0)
        #expect(h.payload_length == 5)
        #expect(h.header_length == 2)
        #expect(maskBytes(h) == [0, 0, 0, 0])
    }

    @Test func sevenBitLengthMasked() throws {
        let h = try #require(parseHeader([0x82, 0x80 | 125, 0xDE, 0xAD, 0xBE, 0xEF, 0x00]))
        #expect(h.fin == 1)
        #expect(h.opcode == 2)
        #expect(h.masked == 1)
        #expect(maskBytes(h) == [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(h.payload_length == 125)
        #expect(h.header_length == 6)
    }

    @Test func sixteenBitLength() throws {
        let h = try #require(parseHeader([0x01, 126, 0x12, 0x34]))
        #expect(h.fin == 0)
        #expect(h.opcode == 1)
        #expect(h.masked == 0)
        #expect(h.payload_length == 0x1234)
        #expect(h.header_length == 4)

        let m = try #require(parseHeader([0x80, 0x80 | 126, 0xFF, 0xFF, 1, 2, 3, 4]))
        #expect(m.opcode == 0)
        #expect(m.masked == 1)
        #expect(m.payload_length == 65535)
        #expect(m.header_length == 8)
        #expect(maskBytes(m) == [1, 2, 3, 4])
    }

    @Test func sixtyFourBitLength() throws {
        let h = try #require(parseHeader([0x82, 127, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]))
        #expect(h.payload_length == 0x0102_0304_0506_0708)
        #expect(h.header_length == 10)
        #expect(h.masked == 0)

        let m = try #require(parseHeader([0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 9, 8, 7, 6]))
        #expect(m.payload_length == 1 << 32)
        #expect(m.masked == 1)
        #expect(maskBytes(m) == [9, 8, 7, 6])
        #expect(m.header_length == 14)
    }

    @Test(arguments: [
        (UInt8(0x80 | 0x70 | 0x9), UInt8(1), UInt8(7), UInt8(9)),
        (UInt8(0x40 | 0x1), UInt8(0), UInt8(4), UInt8(1)),
        (UInt8(0x20 | 0xA), UInt8(0), UInt8(2), UInt8(10)),
        (UInt8(0x10 | 0x8), UInt8(0), UInt8(1), UInt8(8)),
        (UInt8(0x80 | 0x0F), UInt8(1), UInt8(0), UInt8(15)),
    ])
    func finRsvOpcodeBits(b0: UInt8, fin: UInt8, rsv: UInt8, opcode: UInt8) throws {
        let h = try #require(parseHeader([b0, 0]))
        #expect(h.fin == fin)
        #expect(h.rsv == rsv)
        #expect(h.opcode == opcode)
        #expect(h.payload_length == 0)
    }

    @Test func everyTruncatedPrefixNeedsMore() {
        let headers: [[UInt8]] = [
            [0x81, 0x05],
            [0x81, 0x85, 1, 2, 3, 4],
            [0x82, 126, 0x01, 0x00],
            [0x82, 0x80 | 126, 0x01, 0x00, 1, 2, 3, 4],
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0],
            [0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0, 5, 6, 7, 8],
        ]
        for header in headers {
            for n in 0..<header.count {
                var h = cf_ws_header()
                let r = header.withUnsafeBufferPointer { cf_ws_parse_header($0.baseAddress, n, &h) }
                #expect(r == 0, "prefix of \(n) bytes of \(header) must need more")
            }
            let full = parseHeader(header)
            #expect(full?.header_length == header.count)
        }
    }

    @Test func trailingPayloadBytesAreNotPartOfHeader() throws {
        let h = try #require(parseHeader([0x81, 0x03, 0x61, 0x62, 0x63]))
        #expect(h.header_length == 2)
        #expect(h.payload_length == 3)
    }

    @Test(arguments: [UInt64(0), 1, 125, 126, 127, 65535, 65536, 1 << 32, UInt64(Int64.max)])
    func writeHeaderRoundTrips(length: UInt64) throws {
        for (fin, opcode) in [(1, UInt8(1)), (0, UInt8(2)), (1, UInt8(0x9)), (0, UInt8(0))] {
            var out = [UInt8](repeating: 0xEE, count: 16)
            let n = cf_ws_write_header(&out, Int32(fin), opcode, length)
            let expectedLength = length < 126 ? 2 : (length <= 65535 ? 4 : 10)
            #expect(n == expectedLength)
            #expect(out[n] == 0xEE, "must not write past the header")
            let h = try #require(parseHeader(Array(out[0..<n])))
            #expect(h.payload_length == length)
            #expect(h.header_length == n)
            #expect(h.masked == 0)
            #expect(h.fin == UInt8(fin))
            #expect(h.rsv == 0)
            #expect(h.opcode == opcode)
        }
    }

    @Test func writeHeaderUsesMinimalEncodingBytes() {
        var out = [UInt8](repeating: 0, count: 10)
        #expect(cf_ws_write_header(&out, 1, 2, 126) == 4)
        #expect(Array(out[0..<4]) == [0x82, 126, 0x00, 126])
        #expect(cf_ws_write_header(&out, 1, 1, 65536) == 10)
        #expect(Array(out[0..<10]) == [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0])
        #expect(cf_ws_write_header(&out, 1, 1, 125) == 2)
        #expect(Array(out[0..<2]) == [0x81, 125])
    }
}

@Suite("cf_ws_unmask")
struct UnmaskTests {
    static func naive(_ data: [UInt8], _ mask: [UInt8], _ offset: Int) -> [UInt8] {
        data.enumerated().map { i, b in b ^ mask[(offset + i) & 3] }
    }

    @Test func matchesNaiveXorForManyLengthsAndOffsets() {
        var rng = SeededGenerator(seed: 0x5EED)
        let masks: [[UInt8]] = [[0x37, 0xFA, 0x21, 0x3D], [0xFF, 0x00, 0x80, 0x01], [0, 0, 0, 0]]
        for mask in masks {
            for length in 0...40 {
                for offset in 0...3 {
                    let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    var work = data
                    work.withUnsafeMutableBufferPointer { buf in
                        mask.withUnsafeBufferPointer { cf_ws_unmask(buf.baseAddress, buf.count, $0.baseAddress, offset) }
                    }
                    #expect(work == Self.naive(data, mask, offset), "length \(length) offset \(offset)")
                    work.withUnsafeMutableBufferPointer { buf in
                        mask.withUnsafeBufferPointer { cf_ws_unmask(buf.baseAddress, buf.count, $0.baseAddress, offset) }
                    }
                    #expect(work == data, "applying twice restores (length \(length) offset \(offset))")
                }
            }
        }
    }

    @Test func unalignedBufferStart() {
        // The wide path must also be right when data does not start 8-aligned.
        let mask: [UInt8] = [1, 2, 4, 8]
        var backing = [UInt8](0..<64)
        let original = backing
        for start in 1..<8 {
            backing = original
            let length = 40
            backing.withUnsafeMutableBufferPointer { buf in
                cf_ws_unmask(buf.baseAddress! + start, length, mask, 2)
            }
            let expected = Array(original[..<start]) + Self.naive(Array(original[start..<(start + length)]), mask, 2)
                + Array(original[(start + length)...])
            #expect(backing == expected, "start \(start)")
        }
    }

    @Test func splitUnmaskingEqualsWhole() {
        // Unmasking a payload in two pieces with the right offset equals one pass.
        let mask: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4]
        let data = [UInt8]((0..<37).map { UInt8($0 * 7 & 0xFF) })
        let whole = Self.naive(data, mask, 0)
        for cut in 0...data.count {
            var work = data
            work.withUnsafeMutableBufferPointer { buf in
                cf_ws_unmask(buf.baseAddress, cut, mask, 0)
                cf_ws_unmask(buf.baseAddress! + cut, buf.count - cut, mask, cut)
            }
            #expect(work == whole, "cut at \(cut)")
        }
    }
}

@Suite("cf_ws_close_code_is_valid")
struct CloseCodeTests {
    @Test(arguments: Array(1000...1003) + Array(1007...1014) + [3000, 3500, 4000, 4999])
    func valid(code: Int) {
        #expect(cf_ws_close_code_is_valid(UInt16(code)) == 1)
    }

    @Test(arguments: [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
    func invalid(code: Int) {
        #expect(cf_ws_close_code_is_valid(UInt16(code)) == 0)
    }

    @Test func wholeRange3000To4999() {
        for code in 3000...4999 { #expect(cf_ws_close_code_is_valid(UInt16(code)) == 1) }
        for code in 1015..<3000 { #expect(cf_ws_close_code_is_valid(UInt16(code)) == 0) }
    }
}
