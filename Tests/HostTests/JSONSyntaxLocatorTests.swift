import Foundation
import Testing

@testable import streamgate

/// The JSON syntax locator: where a configuration file first breaks RFC
/// 8259, and nothing at all for valid JSON.
@Suite("JSON syntax errors with line and column")
struct JSONSyntaxLocatorTests {
    static func problem(_ text: String) -> JSONSyntaxLocator.Problem? {
        JSONSyntaxLocator.firstProblem(in: Array(text.utf8))
    }

    @Test(arguments: [
        ("{\"listen\": {\"port\": 8080,}", 1, 26, "another member after ','"),
        ("{\"a\": [1, 2,]}", 1, 13, "another value after ','"),
        ("{\"a\": 1\n \"b\": 2}", 2, 2, "',' or '}'"),
        ("[1 2]", 1, 4, "',' or ']'"),
        ("{\"a\" 1}", 1, 6, "':'"),
        ("{a: 1}", 1, 2, "a member name in double quotes"),
        ("{\"a\": 'x'}", 1, 7, "strings take double quotes"),
        ("{\"a\": \"x\n\"}", 1, 9, "before the end of the line"),
        ("{\"a\": \"x\\q\"}", 1, 10, "one of"),
        ("{\"a\": \"\\u12G4\"}", 1, 12, "four hex digits"),
        ("{\"a\": \"open", 1, 7, "a closing '\"'"),
        ("{\"é\": 01}", 1, 8, "without a leading zero"),
        ("{\"a\": 1.}", 1, 9, "a digit after the decimal point"),
        ("{\"a\": 1e}", 1, 9, "a digit in the exponent"),
        ("{\"a\": -}", 1, 8, "a digit"),
        ("{\"a\": tru}", 1, 10, "'true'"),
        ("{\"a\": nul", 1, 10, "'null', found the end of the file"),
        ("", 1, 1, "a value, found the end of the file"),
        ("{\"a\": 1} x", 1, 10, "the end of the file after the JSON value"),
        ("{\n  \"ü\": [\n    {\"b\": [true, false, null,]}\n  ]\n}", 3, 30, "another value after ','"),
    ])
    func pointsAtTheFirstProblem(text: String, line: Int, column: Int, expected: String) {
        let found = Self.problem(text)
        #expect(found?.line == line && found?.column == column, "\(String(describing: found))")
        #expect(found?.expected.contains(expected) == true, "\(String(describing: found))")
    }

    /// `//` comments outside strings are whitespace to the locator and are
    /// blanked (same length, line breaks kept) for the decoder.
    @Test func commentsOutsideStringsAreBlankedAndPositionsKept() throws {
        let text = "// head\n{\"url\": \"http://x//y\", // why\n \"q\": \"a\\\"//b\"} // end"
        #expect(Self.problem(text) == nil)
        let blanked = JSONSyntaxLocator.withoutComments(Array(text.utf8))
        #expect(blanked.count == text.utf8.count)
        let object = try JSONSerialization.jsonObject(with: Data(blanked)) as? [String: String]
        #expect(object == ["url": "http://x//y", "q": "a\"//b"])
        #expect(Self.problem("{\"a\": 1 // c\n,}") == .init(line: 2, column: 2, expected: "another member after ',' (a trailing comma is not JSON)"))
        #expect(Self.problem("{\"a\": / 1}")?.expected.contains("a value") == true, "one slash is no comment")
    }

    @Test func invalidUTF8AndDeepNestingAreFound() {
        let bytes: [UInt8] = Array("{\"a\": \"x".utf8) + [0xFF] + Array("\"}".utf8)
        #expect(JSONSyntaxLocator.firstProblem(in: bytes) == .init(line: 1, column: 9, expected: "UTF-8 text (the byte here is not)"))
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(Self.problem(deep)?.expected.contains("levels of nesting") == true)
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(Self.problem(fine) == nil)
    }

    /// Valid documents, including what Foundation writes for random values,
    /// have no problem.
    @Test func validJSONHasNone() throws {
        for text in ["{}", "[]", "0", "-0.5e+10", "\"\\u00e9\\n\\\"\"", " {\"a\" : [ 1 , {\"b\": null} ] } \n",
                     "{\"emoji\": \"🎉\", \"n\": 1E-3, \"t\": true}"] {
            #expect(Self.problem(text) == nil, "\(text)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let value = Self.randomValue(depth: 0, using: &generator)
            let data = try JSONSerialization.data(withJSONObject: ["v": value], options: [.prettyPrinted])
            #expect(JSONSyntaxLocator.firstProblem(in: Array(data)) == nil, "\(String(decoding: data, as: UTF8.self))")
        }
    }

    static func randomValue(depth: Int, using generator: inout SystemRandomNumberGenerator) -> Any {
        switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &generator) {
        case 0: return Int.random(in: -1_000_000...1_000_000, using: &generator)
        case 1: return Double.random(in: -1e6...1e6, using: &generator)
        case 2: return String((0..<Int.random(in: 0..<8, using: &generator)).map { _ in
                Character(Unicode.Scalar([0x22, 0x5C, 0x0A, 0x01, 0xE9, 0x1F389, 0x41].randomElement(using: &generator)!)!) })
        case 3: return Bool.random(using: &generator)
        case 4: return (0..<Int.random(in: 0..<4, using: &generator)).map { _ in randomValue(depth: depth + 1, using: &generator) }
        default:
            var object: [String: Any] = [:]
            for i in 0..<Int.random(in: 0..<4, using: &generator) { object["k\(i)\u{E9}"] = randomValue(depth: depth + 1, using: &generator) }
            return object
        }
    }
}
