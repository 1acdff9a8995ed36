import StreamgatePluginAPI

/// JSON values as block-style YAML (1.2), for the AsyncAPI document's
/// `.yaml` form. Every string and key is written double-quoted with JSON's
/// escapes, which YAML reads the same way, so no value can be misread as
/// another type (`"yes"`, `"1.0"`, `"null"` stay strings). Characters YAML
/// may not print are escaped; a key too long for YAML's implicit keys
/// (1024 characters) is written as an explicit `? key` entry; numbers are
/// written so YAML 1.1 readers (PyYAML) read them as numbers too.
enum YAMLWriter {
    static func write(_ value: JSONValue) -> String {
        var out = ""
        emit(value, indent: 0, into: &out, inline: false)
        return out.hasSuffix("\n") ? out : out + "\n"
    }

    private static func emit(_ value: JSONValue, indent: Int, into out: inout String, inline: Bool) {
        let pad = String(repeating: "  ", count: indent)
        switch value {
        case .object(let object) where !object.isEmpty:
            var first = true
            for key in object.keys.sorted() {
                if !(first && inline) { out += pad }
                first = false
                let quotedKey = scalar(.string(key))
                if quotedKey.unicodeScalars.count > Self.longestImplicitKey {
                    out += "? " + quotedKey + "\n" + pad + ":"
                } else {
                    out += quotedKey + ":"
                }
                let child = object[key]!
                if isBlock(child) {
                    out += "\n"
                    emit(child, indent: indent + 1, into: &out, inline: false)
                } else {
                    out += " " + scalar(child) + "\n"
                }
            }
        case .array(let items) where !items.isEmpty:
            var first = true
            for item in items {
                if !(first && inline) { out += pad }
                first = false
                out += "- "
                if isBlock(item) {
                    emit(item, indent: indent + 1, into: &out, inline: true)
                } else {
                    out += scalar(item) + "\n"
                }
            }
        default:
            out += (inline ? "" : pad) + scalar(value) + "\n"
        }
    }

    /// YAML reads an implicit key of at most 1024 characters, the quotes
    /// and what follows on its line included: a margin is kept.
    static let longestImplicitKey = 1000

    /// Integers up to 2^53 are exact in a double and are written as integers.
    static let largestExactInteger = 9_007_199_254_740_992.0

    private static func isBlock(_ value: JSONValue) -> Bool {
        switch value {
        case .object(let o): !o.isEmpty
        case .array(let a): !a.isEmpty
        default: false
        }
    }

    private static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return number(n)
        case .string(let s): return quoted(s)
        case .object: return "{}"
        case .array: return "[]"
        }
    }

    /// An integer as one; any other number with a '.' before its exponent
    /// ("1.0e+20", not "1e+20", which YAML 1.1 reads as a string).
    private static func number(_ n: Double) -> String {
        if n == n.rounded() && abs(n) <= largestExactInteger { return String(Int64(n)) }
        let text = String(n)
        guard !text.contains("."), let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return text }
        return text[..<e] + ".0" + text[e...]
    }

    /// Not in YAML's printable set (c-printable): C0 and C1 controls, DEL,
    /// U+FFFE and U+FFFF; also the line and paragraph separators and the
    /// byte-order mark, which readers treat specially.
    private static func mustEscape(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || v == 0x2028 || v == 0x2029 || v == 0xFEFF
            || v == 0xFFFE || v == 0xFFFF
    }

    private static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if mustEscape(scalar) {
                    out += "\\u" + String(scalar.value, radix: 16, uppercase: true).leftPadded(to: 4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
