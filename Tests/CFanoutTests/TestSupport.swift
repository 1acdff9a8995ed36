import CFanout

/// A small deterministic generator (SplitMix64) so random tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Parses a header from bytes; nil when cf_ws_parse_header asks for more.
func parseHeader(_ bytes: [UInt8]) -> cf_ws_header? {
    var h = cf_ws_header()
    let r = bytes.withUnsafeBufferPointer { cf_ws_parse_header($0.baseAddress, $0.count, &h) }
    return r == 1 ? h : nil
}

func maskBytes(_ h: cf_ws_header) -> [UInt8] {
    withUnsafeBytes(of: h.mask) { Array($0) }
}

/// Reads a NUL-terminated C char array field of a struct as a String.
func cString<T>(_ field: T) -> String {
    withUnsafeBytes(of: field) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
}

func utf8State(_ bytes: [UInt8], state: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBufferPointer { cf_utf8_validate(state, $0.baseAddress, $0.count) }
}
