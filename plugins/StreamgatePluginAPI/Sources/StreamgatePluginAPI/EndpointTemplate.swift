/// An API's endpoint path with named parameters, such as
/// `/scores/live/{sport}` (since API 2.2). Each segment is either literal or
/// a whole-segment parameter `{name}`, which matches one non-empty segment.
/// A mapper pairs it with a `KeyTemplate` over the same parameters, so
/// `/scores/live/tennis` is key `live/tennis` and back.
///
/// Whole segments only, on purpose: a path then matches a template in one
/// pass with no backtracking, and whether two templates can match the same
/// path is decidable segment by segment (`overlaps`), which is how the
/// portal refuses ambiguous APIs before a gateway ever sees them.
///
/// Paths are compared as UTF-8 bytes, never as Swift `Character`s: a
/// WebSocket endpoint is bytes on the wire, and `String ==` would call "é"
/// (U+00E9) and "e" + U+0301 equal, or read "/" + U+0301 as one Character
/// that is no separator.
public struct EndpointTemplate: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(String)

        /// Byte-wise, like the paths the segments match.
        public static func == (a: Segment, b: Segment) -> Bool {
            switch (a, b) {
            case (.literal(let x), .literal(let y)), (.parameter(let x), .parameter(let y)): UTF8Bytes.equal(x, y)
            default: false
            }
        }

        public func hash(into hasher: inout Hasher) {
            switch self {
            case .literal(let text): hasher.combine(0 as UInt8); UTF8Bytes.hash(text, into: &hasher)
            case .parameter(let name): hasher.combine(1 as UInt8); UTF8Bytes.hash(name, into: &hasher)
            }
        }
    }

    public let text: String
    public let segments: [Segment]

    /// Longest template or filled path, in UTF-8 bytes (as the `topic-key` mapper).
    public static let maxBytes = 1024

    public init(_ text: String) throws(EndpointError) {
        guard text.utf8.first == UTF8Bytes.slash else { throw EndpointError("an endpoint template starts with '/', as in /scores/{sport}") }
        guard text.utf8.count <= Self.maxBytes else { throw EndpointError("an endpoint template is at most \(Self.maxBytes) bytes") }
        var segments: [Segment] = []
        var names: Set<String> = []
        for bytes in UTF8Bytes.segments(text.utf8.dropFirst()) {
            let part = UTF8Bytes.string(bytes)
            guard !bytes.isEmpty else { throw EndpointError("'\(text)' has an empty segment ('//' or a trailing '/')") }
            if bytes.count >= 2 && bytes.first == UInt8(ascii: "{") && bytes.last == UInt8(ascii: "}") {
                let name = UTF8Bytes.string(bytes.dropFirst().dropLast())
                guard TemplateParameter.isValidName(name) else {
                    throw EndpointError("'{\(name)}' is not a parameter name (a letter or '_', then letters, digits or '_')")
                }
                guard names.insert(name).inserted else { throw EndpointError("parameter '{\(name)}' appears twice in '\(text)'") }
                segments.append(.parameter(name))
            } else {
                guard !bytes.contains(where: { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "}") || $0 == UTF8Bytes.star }) else {
                    throw EndpointError("segment '\(part)' of '\(text)': '{name}' must be a whole segment, and '*' is not allowed")
                }
                if let problem = TemplateParameter.problem(inValue: part) {
                    throw EndpointError("segment '\(part)' of '\(text)' \(problem)")
                }
                segments.append(.literal(part))
            }
        }
        self.text = text
        self.segments = segments
    }

    /// Byte-wise: two templates are equal when their texts' bytes are.
    public static func == (a: EndpointTemplate, b: EndpointTemplate) -> Bool { UTF8Bytes.equal(a.text, b.text) }

    public func hash(into hasher: inout Hasher) { UTF8Bytes.hash(text, into: &hasher) }

    public var description: String { text }

    /// The parameter names, in order.
    public var parameters: [String] {
        segments.compactMap { if case .parameter(let name) = $0 { name } else { nil } }
    }

    /// The parameter values when `path` matches, else nil. A literal matches
    /// only its own bytes; a value keeps the path's bytes as they are.
    public func match(_ path: String) -> [String: String]? {
        guard path.utf8.first == UTF8Bytes.slash else { return nil }
        let parts = UTF8Bytes.segments(path.utf8.dropFirst())
        guard parts.count == segments.count else { return nil }
        var values: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let literal):
                guard part.elementsEqual(literal.utf8) else { return nil }
            case .parameter(let name):
                let value = UTF8Bytes.string(part)
                guard TemplateParameter.problem(inValue: value) == nil else { return nil }
                values[name] = value
            }
        }
        return values
    }

    /// The path with every parameter replaced by its value (values are
    /// checked by the caller: `TemplateParameter.problem(inValue:)`).
    /// Joining strings joins their bytes, so `match` gives the values back.
    public func fill(_ values: [String: String]) -> String {
        "/" + segments.map { segment in
            switch segment {
            case .literal(let literal): literal
            case .parameter(let name): values[name] ?? ""
            }
        }.joined(separator: "/")
    }

    /// True when some path matches both templates. A literal segment is a
    /// valid value (the initializer checks), so it meets any parameter; two
    /// literals meet when their bytes are equal.
    public func overlaps(_ other: EndpointTemplate) -> Bool {
        guard segments.count == other.segments.count else { return false }
        return zip(segments, other.segments).allSatisfy { a, b in
            if case .literal(let x) = a, case .literal(let y) = b { return UTF8Bytes.equal(x, y) }
            return true
        }
    }
}

/// The rules both templates share for parameter names and values.
public enum TemplateParameter {
    /// A letter or `_`, then letters, digits or `_` (ASCII), at most 64.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 64 else { return false }
        func letter(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") || c == UInt8(ascii: "_") }
        return letter(first) && name.utf8.allSatisfy { letter($0) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) }
    }

    /// Why `value` cannot stand for a parameter (empty, a `/`, a `*`, a
    /// control character), or nil when it can. The reason reads after the
    /// value's name: "segment 'x' <reason>". `/` and `*` are looked for as
    /// bytes: followed by a combining mark, each is part of a Character
    /// that is neither, yet still a separator or a wildcard on the wire.
    public static func problem(inValue value: String) -> String? {
        if value.utf8.isEmpty { return "is empty" }
        if value.utf8.contains(UTF8Bytes.slash) { return "contains '/'" }
        if value.utf8.contains(UTF8Bytes.star) { return "contains '*'" }
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "contains a control character"
        }
        return nil
    }
}

/// Byte-wise helpers for paths, keys and patterns, which are UTF-8 bytes on
/// the wire: segments are split at the byte `/` and compared byte by byte.
enum UTF8Bytes {
    static let slash = UInt8(ascii: "/")
    static let star = UInt8(ascii: "*")

    /// `bytes` split at every `/`, empty segments kept.
    static func segments(_ bytes: Substring.UTF8View) -> [Substring.UTF8View] {
        bytes.split(separator: slash, omittingEmptySubsequences: false)
    }

    /// The string of `bytes`, which is never repaired: a piece of a valid
    /// string cut at ASCII bytes such as `/` or `{` is itself valid UTF-8.
    static func string(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    static func equal(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    /// Hashes the bytes, so that hashing agrees with `equal`.
    static func hash(_ text: some StringProtocol, into hasher: inout Hasher) {
        hasher.combine(text.utf8.count)
        for byte in text.utf8 { hasher.combine(byte) }
    }
}
