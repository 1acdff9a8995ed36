/// A Kafka key with named parameters, such as `live/{sport}` or
/// `user-{id}/orders` (since API 2.2): the other half of an
/// `EndpointTemplate`. Split at `/`, each segment is a literal or a literal
/// prefix followed by one parameter that ends the segment (`user-{id}`).
/// A parameter's value never contains `/`.
///
/// That shape is what makes the reverse direction (a record's key → its
/// endpoint) exact: a key matches a template in one pass, each parameter
/// taking the rest of its segment, and whether two templates can match the
/// same key is decidable segment by segment (`overlaps`). The portal refuses
/// two endpoints on one topic whose key templates overlap, so every record
/// belongs to at most one endpoint.
///
/// Keys are compared as UTF-8 bytes, never as Swift `Character`s: a Kafka
/// key is bytes, and a key that differs from a template's literal text
/// byte-wise (say "e" + U+0301 for "é") must not map to its endpoint.
public struct KeyTemplate: Sendable, Hashable, CustomStringConvertible {
    public struct Segment: Sendable, Hashable {
        /// The literal text (the whole segment, or what precedes the parameter).
        public let prefix: String
        /// The parameter ending the segment, if any.
        public let parameter: String?

        /// Byte-wise, like the keys the segments match.
        public static func == (a: Segment, b: Segment) -> Bool {
            // Parameter names are ASCII (`TemplateParameter.isValidName`), so `==` on them is byte-wise.
            UTF8Bytes.equal(a.prefix, b.prefix) && a.parameter == b.parameter
        }

        public func hash(into hasher: inout Hasher) {
            UTF8Bytes.hash(prefix, into: &hasher)
            hasher.combine(parameter)
        }
    }

    public let text: String
    public let segments: [Segment]

    /// Longest template, in UTF-8 bytes.
    public static let maxBytes = 1024

    public init(_ text: String) throws(EndpointError) {
        guard !text.utf8.isEmpty else { throw EndpointError("a key template is not empty") }
        guard text.utf8.count <= Self.maxBytes else { throw EndpointError("a key template is at most \(Self.maxBytes) bytes") }
        var segments: [Segment] = []
        var names: Set<String> = []
        let open = UInt8(ascii: "{"), close = UInt8(ascii: "}")
        for bytes in UTF8Bytes.segments(text.utf8[...]) {
            let part = UTF8Bytes.string(bytes)
            guard let brace = bytes.firstIndex(of: open) else {
                guard !bytes.contains(close) else { throw EndpointError("segment '\(part)' of key template '\(text)' has '}' without '{'") }
                segments.append(Segment(prefix: part, parameter: nil))
                continue
            }
            let inside = bytes[bytes.index(after: brace)...].dropLast()
            guard bytes.last == close, !inside.contains(open), !inside.contains(close) else {
                throw EndpointError("segment '\(part)' of key template '\(text)': a parameter '{name}' must end its segment (one per segment)")
            }
            let prefix = bytes[..<brace]
            let name = UTF8Bytes.string(inside)
            guard TemplateParameter.isValidName(name) else {
                throw EndpointError("'{\(name)}' is not a parameter name (a letter or '_', then letters, digits or '_')")
            }
            guard !prefix.contains(close) else { throw EndpointError("segment '\(part)' of key template '\(text)' has '}' without '{'") }
            guard names.insert(name).inserted else { throw EndpointError("parameter '{\(name)}' appears twice in key template '\(text)'") }
            segments.append(Segment(prefix: UTF8Bytes.string(prefix), parameter: name))
        }
        if let control = text.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            throw EndpointError("key template '\(text)' contains a control character (U+\(String(control.value, radix: 16, uppercase: true)))")
        }
        self.text = text
        self.segments = segments
    }

    /// Byte-wise: two templates are equal when their texts' bytes are.
    public static func == (a: KeyTemplate, b: KeyTemplate) -> Bool { UTF8Bytes.equal(a.text, b.text) }

    public func hash(into hasher: inout Hasher) { UTF8Bytes.hash(text, into: &hasher) }

    public var description: String { text }

    public var parameters: [String] { segments.compactMap(\.parameter) }

    /// The parameter values when `key` matches, else nil. A prefix matches
    /// only its own bytes, and the value is the rest of the segment's bytes.
    public func match(_ key: String) -> [String: String]? {
        let parts = UTF8Bytes.segments(key.utf8[...])
        guard parts.count == segments.count else { return nil }
        var values: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            if let name = segment.parameter {
                guard part.starts(with: segment.prefix.utf8) else { return nil }
                let value = UTF8Bytes.string(part.dropFirst(segment.prefix.utf8.count))
                guard TemplateParameter.problem(inValue: value) == nil else { return nil }
                values[name] = value
            } else {
                guard part.elementsEqual(segment.prefix.utf8) else { return nil }
            }
        }
        return values
    }

    /// The key with every parameter replaced by its value. Joining strings
    /// joins their bytes, so `match` gives the values back.
    public func fill(_ values: [String: String]) -> String {
        segments.map { $0.prefix + ($0.parameter.flatMap { values[$0] } ?? "") }.joined(separator: "/")
    }

    /// True when some key matches both templates, segment by segment:
    /// - two literals: when their bytes are equal;
    /// - a literal and `prefix{p}`: when the literal is the prefix followed
    ///   by a valid value. A literal may hold `*` (a Kafka key is any bytes)
    ///   but a value may not, so `a*` is no key of `a{x}`;
    /// - `prefix{p}` and `longer{q}`, where `longer` extends `prefix` by
    ///   `extra`: the key segments `longer` + v give p = `extra` + v, which
    ///   is a valid value for some v exactly when `extra` holds no `*`. So
    ///   `a*{y}` never meets `a{x}`, while `ab{y}` does (`abc`).
    /// A prefix or literal never holds `/`, a control character or `{`, so
    /// `*` is the only byte a literal may hold and a value may not.
    public func overlaps(_ other: KeyTemplate) -> Bool {
        guard segments.count == other.segments.count else { return false }
        return zip(segments, other.segments).allSatisfy { a, b in
            switch (a.parameter, b.parameter) {
            case (nil, nil): UTF8Bytes.equal(a.prefix, b.prefix)
            case (nil, _?): Self.literal(a.prefix, isPrefixThenValue: b.prefix)
            case (_?, nil): Self.literal(b.prefix, isPrefixThenValue: a.prefix)
            case (_?, _?): Self.prefix(a.prefix, meets: b.prefix)
            }
        }
    }

    /// True when the key segment `literal` matches `prefix{p}`.
    private static func literal(_ literal: String, isPrefixThenValue prefix: String) -> Bool {
        guard literal.utf8.starts(with: prefix.utf8) else { return false }
        let value = UTF8Bytes.string(literal.utf8.dropFirst(prefix.utf8.count))
        return TemplateParameter.problem(inValue: value) == nil
    }

    /// True when some key segment matches both `a{p}` and `b{q}`: one prefix
    /// starts the other, and what the longer adds holds no `*` (it would
    /// start the shorter one's value).
    private static func prefix(_ a: String, meets b: String) -> Bool {
        let (shorter, longer) = a.utf8.count <= b.utf8.count ? (a, b) : (b, a)
        guard longer.utf8.starts(with: shorter.utf8) else { return false }
        return !longer.utf8.dropFirst(shorter.utf8.count).contains(UTF8Bytes.star)
    }
}
