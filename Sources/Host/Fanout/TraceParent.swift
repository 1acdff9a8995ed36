/// The W3C Trace Context `traceparent` value (https://www.w3.org/TR/trace-context/):
/// `version-traceid-parentid-flags`, lowercase hex, e.g.
/// `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`. The gateway
/// forwards it unchanged, so it only checks the shape: a malformed header
/// from a producer is dropped rather than handed to every browser.
enum TraceParent {
    /// The longest value forwarded: version 00 is 55 bytes; later versions
    /// may append fields, and the frame gives it a one-byte length.
    static let maxBytes = 255

    static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        let value = Array(bytes)
        guard value.count == 55 || (value.count > 55 && value.count <= maxBytes && value[55] == UInt8(ascii: "-")) else {
            return false
        }
        // version (2) - trace-id (32) - parent-id (16) - flags (2)
        let fields = [(0, 2), (3, 32), (36, 16), (53, 2)]
        for (start, length) in fields where !value[start..<(start + length)].allSatisfy(isLowerHex) { return false }
        guard value[2] == UInt8(ascii: "-"), value[35] == UInt8(ascii: "-"), value[52] == UInt8(ascii: "-") else {
            return false
        }
        let version = value[0..<2]
        if version.elementsEqual("ff".utf8) { return false }
        if version.elementsEqual("00".utf8) && value.count != 55 { return false }
        // An all-zero trace id or parent id is invalid.
        if value[3..<35].allSatisfy({ $0 == UInt8(ascii: "0") }) || value[36..<52].allSatisfy({ $0 == UInt8(ascii: "0") }) {
            return false
        }
        return true
    }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
