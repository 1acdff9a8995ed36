/// An endpoint pattern such as `/scores/*/live` or `/scores/**`, matched
/// segment by segment (segments are separated by `/`):
/// - a literal segment matches itself exactly;
/// - `*` matches exactly one non-empty segment;
/// - `**` matches zero or more segments, and only as a whole segment.
/// `/scores/*` matches `/scores/nba` but not `/scores` or `/scores/nba/live`;
/// `/scores/**` matches all three. Used by per-endpoint settings (cache
/// bounds) and by authorization rights, so both mean the same thing.
///
/// Segments are compared as UTF-8 bytes, never as Swift `Character`s, so a
/// pattern grants exactly the paths whose bytes it names ("é" as U+00E9 is
/// not "e" + U+0301), and `/` or `*` followed by a combining mark is still
/// a separator or a star.
public struct EndpointPattern: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    /// Each segment's bytes (arrays, so `==` on them is byte-wise).
    let segments: [[UInt8]]

    static let star = Array("*".utf8)
    static let doubleStar = Array("**".utf8)

    /// Throws a reason when the pattern is malformed.
    public init(_ text: String) throws(EndpointError) {
        guard text.utf8.first == UTF8Bytes.slash else { throw EndpointError("a pattern starts with '/'") }
        let segments = UTF8Bytes.segments(text.utf8.dropFirst()).map { Array($0) }
        for segment in segments where segment != Self.star && segment != Self.doubleStar && segment.contains(UTF8Bytes.star) {
            throw EndpointError("'*' and '**' must be whole segments, got '\(UTF8Bytes.string(segment))'")
        }
        self.text = text
        self.segments = segments
    }

    /// Byte-wise: two patterns are equal when their texts' bytes are.
    public static func == (a: EndpointPattern, b: EndpointPattern) -> Bool { UTF8Bytes.equal(a.text, b.text) }

    public var description: String { text }

    public func matches(_ endpoint: String) -> Bool {
        guard endpoint.utf8.first == UTF8Bytes.slash else { return false }
        let parts = UTF8Bytes.segments(endpoint.utf8.dropFirst())
        return Self.match(segments[...], parts[...])
    }

    private static func match(_ pattern: ArraySlice<[UInt8]>, _ parts: ArraySlice<Substring.UTF8View>) -> Bool {
        guard let head = pattern.first else { return parts.isEmpty }
        if head == doubleStar {
            let rest = pattern.dropFirst()
            if rest.isEmpty { return true }
            var remaining = parts
            while true {
                if match(rest, remaining) { return true }
                guard !remaining.isEmpty else { return false }
                remaining = remaining.dropFirst()
            }
        }
        guard let part = parts.first else { return false }
        if head == star ? part.isEmpty : !part.elementsEqual(head) { return false }
        return match(pattern.dropFirst(), parts.dropFirst())
    }
}
