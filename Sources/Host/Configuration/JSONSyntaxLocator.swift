/// Where a JSON text first breaks the grammar of RFC 8259, as a line and a
/// column and what was expected there. One extension: `//` starts a comment
/// that runs to the end of the line (outside strings), so a configuration
/// file can say why a value is what it is (`streamgate config-example`);
/// `withoutComments` blanks them before the file is decoded.
///
/// Foundation's decoder only says that the data "was not valid JSON"; an
/// operator editing a configuration file needs to be pointed at the comma.
/// It is also stricter than Foundation's decoder, which lets a trailing
/// comma, a leading zero or a raw line break inside a string pass: a file
/// is checked here first, and decoded only when it is JSON. It only finds
/// the place; it never builds values.
enum JSONSyntaxLocator {
    struct Problem: Equatable, CustomStringConvertible {
        /// 1-based; the column counts characters (UTF-8 sequences), not bytes.
        let line: Int
        let column: Int
        let expected: String

        var description: String { "line \(line), column \(column): expected \(expected)" }
    }

    /// Nesting deeper than this is refused, as it is by the decoder.
    static let maxDepth = 512

    /// `bytes` with every `//` comment replaced by spaces (line breaks kept,
    /// so positions stay the same), for a decoder that knows no comments.
    static func withoutComments(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        var index = 0
        var inString = false
        while index < out.count {
            let byte = out[index]
            if inString {
                if byte == UInt8(ascii: "\\") { index += 1 } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == UInt8(ascii: "/"), index + 1 < out.count, out[index + 1] == UInt8(ascii: "/") {
                while index < out.count, out[index] != UInt8(ascii: "\n") {
                    out[index] = UInt8(ascii: " ")
                    index += 1
                }
                continue
            }
            index += 1
        }
        return out
    }

    /// The first problem in `bytes`, or nil when they are valid JSON.
    static func firstProblem(in bytes: [UInt8]) -> Problem? {
        if let invalid = firstInvalidUTF8(bytes) {
            return locate(invalid, in: bytes, expected: "UTF-8 text (the byte here is not)")
        }
        var scanner = Scanner(bytes: bytes)
        do throws(Scanner.Failure) {
            scanner.skipSpace()
            try scanner.value(depth: 0)
            scanner.skipSpace()
            if scanner.offset < bytes.count { throw Scanner.Failure(offset: scanner.offset, expected: "the end of the file after the JSON value") }
            return nil
        } catch {
            return locate(error.offset, in: bytes, expected: error.expected)
        }
    }

    private static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    private static func locate(_ offset: Int, in bytes: [UInt8], expected: String) -> Problem {
        var line = 1
        var column = 1
        for byte in bytes[..<min(offset, bytes.count)] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {  // not a UTF-8 continuation byte
                column += 1
            }
        }
        return Problem(line: line, column: column, expected: expected)
    }

    private struct Scanner {
        struct Failure: Error {
            let offset: Int
            let expected: String
        }

        let bytes: [UInt8]
        var offset = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        var current: UInt8? { offset < bytes.count ? bytes[offset] : nil }

        /// Whitespace and `//` comments.
        mutating func skipSpace() {
            while let byte = current {
                if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                    offset += 1
                } else if byte == UInt8(ascii: "/"), offset + 1 < bytes.count, bytes[offset + 1] == UInt8(ascii: "/") {
                    while let byte = current, byte != 0x0A { offset += 1 }
                } else {
                    return
                }
            }
        }

        func fail(_ expected: String) -> Failure {
            Failure(offset: offset, expected: current == nil ? expected + ", found the end of the file" : expected)
        }

        mutating func value(depth: Int) throws(Failure) {
            guard let byte = current else { throw fail("a value") }
            switch byte {
            case UInt8(ascii: "{"):
                guard depth < JSONSyntaxLocator.maxDepth else { throw fail("at most \(JSONSyntaxLocator.maxDepth) levels of nesting") }
                try object(depth: depth + 1)
            case UInt8(ascii: "["):
                guard depth < JSONSyntaxLocator.maxDepth else { throw fail("at most \(JSONSyntaxLocator.maxDepth) levels of nesting") }
                try array(depth: depth + 1)
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "'"): throw fail("a value (strings take double quotes)")
            default: throw fail("a value (an object, array, string, number, true, false or null)")
            }
        }

        mutating func object(depth: Int) throws(Failure) {
            offset += 1  // {
            skipSpace()
            if current == UInt8(ascii: "}") { offset += 1; return }
            while true {
                skipSpace()
                guard current == UInt8(ascii: "\"") else {
                    throw fail(current == UInt8(ascii: "}") ? "another member after ',' (a trailing comma is not JSON)"
                                                            : "a member name in double quotes")
                }
                try string()
                skipSpace()
                guard current == UInt8(ascii: ":") else { throw fail("':' after the member name") }
                offset += 1
                skipSpace()
                try value(depth: depth)
                skipSpace()
                switch current {
                case UInt8(ascii: ","): offset += 1
                case UInt8(ascii: "}"): offset += 1; return
                default: throw fail("',' or '}' after the member's value")
                }
            }
        }

        mutating func array(depth: Int) throws(Failure) {
            offset += 1  // [
            skipSpace()
            if current == UInt8(ascii: "]") { offset += 1; return }
            while true {
                skipSpace()
                if current == UInt8(ascii: "]") { throw fail("another value after ',' (a trailing comma is not JSON)") }
                try value(depth: depth)
                skipSpace()
                switch current {
                case UInt8(ascii: ","): offset += 1
                case UInt8(ascii: "]"): offset += 1; return
                default: throw fail("',' or ']' after the array's value")
                }
            }
        }

        mutating func string() throws(Failure) {
            let start = offset
            offset += 1  // "
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    offset += 1
                    return
                case UInt8(ascii: "\\"):
                    offset += 1
                    guard let escaped = current else { break }
                    if escaped == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            offset += 1
                            guard let digit = current, digit.isHexDigit else { throw fail("four hex digits after '\\u'") }
                        }
                    } else if !"\"\\/bfnrt".utf8.contains(escaped) {
                        throw fail("one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX")
                    }
                    offset += 1
                case 0..<0x20:
                    throw fail(byte == 0x0A ? "'\"' closing the string before the end of the line" : "a control character escaped (\\n, \\t, \\u0001) inside a string")
                default:
                    offset += 1
                }
            }
            offset = start
            throw fail("a closing '\"' for the string that starts here")
        }

        mutating func number() throws(Failure) {
            if current == UInt8(ascii: "-") { offset += 1 }
            guard let first = current, first.isDigit else { throw fail("a digit") }
            offset += 1
            if first != UInt8(ascii: "0") { digits() } else if current?.isDigit == true { throw fail("a number without a leading zero") }
            if current == UInt8(ascii: ".") {
                offset += 1
                guard current?.isDigit == true else { throw fail("a digit after the decimal point") }
                digits()
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                offset += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { offset += 1 }
                guard current?.isDigit == true else { throw fail("a digit in the exponent") }
                digits()
            }
        }

        mutating func digits() {
            while current?.isDigit == true { offset += 1 }
        }

        mutating func literal(_ word: String) throws(Failure) {
            for expected in word.utf8 {
                guard current == expected else { throw fail("'\(word)'") }
                offset += 1
            }
        }
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    fileprivate var isHexDigit: Bool {
        isDigit || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f")) || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
