import StreamgatePluginAPI

/// JSON values as block-style YAML (1.2), for the AsyncAPI document's
/// `.yaml` form. Every string and key is written double-quoted with JSON's
/// escapes, which YAML reads the same way, so no value can be misread as
/// another type (`"yes"`, `"1.0"`, `"null"` stay strings).
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
                out += scalar(.string(key)) + ":"
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
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .string(let s): return quoted(s)
        case .object: return "{}"
        case .array: return "[]"
        }
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
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029 || scalar.value == 0xFEFF {
                    out += "\\u" + String(scalar.value, radix: 16, uppercase: true).leftPadded(to: 4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
