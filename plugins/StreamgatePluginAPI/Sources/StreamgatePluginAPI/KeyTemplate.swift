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
public struct KeyTemplate: Sendable, Hashable, CustomStringConvertible {
    public struct Segment: Sendable, Hashable {
        /// The literal text (the whole segment, or what precedes the parameter).
        public let prefix: String
        /// The parameter ending the segment, if any.
        public let parameter: String?
    }

    public let text: String
    public let segments: [Segment]

    /// Longest template, in UTF-8 bytes.
    public static let maxBytes = 1024

    public init(_ text: String) throws(EndpointError) {
        guard !text.isEmpty else { throw EndpointError("a key template is not empty") }
        guard text.utf8.count <= Self.maxBytes else { throw EndpointError("a key template is at most \(Self.maxBytes) bytes") }
        var segments: [Segment] = []
        var names: Set<String> = []
        for part in text.split(separator: "/", omittingEmptySubsequences: false) {
            guard let open = part.firstIndex(of: "{") else {
                guard !part.contains("}") else { throw EndpointError("segment '\(part)' of key template '\(text)' has '}' without '{'") }
                segments.append(Segment(prefix: String(part), parameter: nil))
                continue
            }
            guard part.hasSuffix("}"), part[part.index(after: open)...].dropLast().allSatisfy({ $0 != "{" && $0 != "}" }) else {
                throw EndpointError("segment '\(part)' of key template '\(text)': a parameter '{name}' must end its segment (one per segment)")
            }
            let prefix = String(part[..<open])
            let name = String(part[part.index(after: open)...].dropLast())
            guard TemplateParameter.isValidName(name) else {
                throw EndpointError("'{\(name)}' is not a parameter name (a letter or '_', then letters, digits or '_')")
            }
            guard !prefix.contains("}") else { throw EndpointError("segment '\(part)' of key template '\(text)' has '}' without '{'") }
            guard names.insert(name).inserted else { throw EndpointError("parameter '{\(name)}' appears twice in key template '\(text)'") }
            segments.append(Segment(prefix: prefix, parameter: name))
        }
        if let control = text.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            throw EndpointError("key template '\(text)' contains a control character (U+\(String(control.value, radix: 16, uppercase: true)))")
        }
        self.text = text
        self.segments = segments
    }

    public var description: String { text }

    public var parameters: [String] { segments.compactMap(\.parameter) }

    /// The parameter values when `key` matches, else nil.
    public func match(_ key: String) -> [String: String]? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == segments.count else { return nil }
        var values: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            if let name = segment.parameter {
                guard part.hasPrefix(segment.prefix) else { return nil }
                let value = String(part.dropFirst(segment.prefix.count))
                guard TemplateParameter.problem(inValue: value) == nil else { return nil }
                values[name] = value
            } else {
                guard part == segment.prefix else { return nil }
            }
        }
        return values
    }

    public func fill(_ values: [String: String]) -> String {
        segments.map { $0.prefix + ($0.parameter.flatMap { values[$0] } ?? "") }.joined(separator: "/")
    }

    /// True when some key matches both templates.
    public func overlaps(_ other: KeyTemplate) -> Bool {
        guard segments.count == other.segments.count else { return false }
        return zip(segments, other.segments).allSatisfy { a, b in
            switch (a.parameter, b.parameter) {
            case (nil, nil): a.prefix == b.prefix
            // A literal matches `prefix{p}` when it extends the prefix by a non-empty value.
            case (nil, _?): a.prefix.hasPrefix(b.prefix) && a.prefix.count > b.prefix.count
            case (_?, nil): b.prefix.hasPrefix(a.prefix) && b.prefix.count > a.prefix.count
            case (_?, _?): a.prefix.hasPrefix(b.prefix) || b.prefix.hasPrefix(a.prefix)
            }
        }
    }
}
