/// An endpoint pattern such as `/scores/*/live` or `/scores/**`, matched
/// segment by segment (segments are separated by `/`):
/// - a literal segment matches itself exactly;
/// - `*` matches exactly one non-empty segment;
/// - `**` matches zero or more segments, and only as a whole segment.
/// `/scores/*` matches `/scores/nba` but not `/scores` or `/scores/nba/live`;
/// `/scores/**` matches all three. Used by per-endpoint settings (cache
/// bounds) and by authorization rights, so both mean the same thing.
public struct EndpointPattern: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    let segments: [Substring]

    /// Throws a reason when the pattern is malformed.
    public init(_ text: String) throws(EndpointError) {
        guard text.hasPrefix("/") else { throw EndpointError("a pattern starts with '/'") }
        let segments = text.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        for segment in segments where segment != "*" && segment != "**" && segment.contains("*") {
            throw EndpointError("'*' and '**' must be whole segments, got '\(segment)'")
        }
        self.text = text
        self.segments = segments
    }

    public var description: String { text }

    public func matches(_ endpoint: String) -> Bool {
        guard endpoint.hasPrefix("/") else { return false }
        let parts = endpoint.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        return Self.match(segments[...], parts[...])
    }

    private static func match(_ pattern: ArraySlice<Substring>, _ parts: ArraySlice<Substring>) -> Bool {
        guard let head = pattern.first else { return parts.isEmpty }
        if head == "**" {
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
        if head == "*" ? part.isEmpty : head != part { return false }
        return match(pattern.dropFirst(), parts.dropFirst())
    }
}
