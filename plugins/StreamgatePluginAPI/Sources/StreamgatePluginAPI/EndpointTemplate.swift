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
public struct EndpointTemplate: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(String)
    }

    public let text: String
    public let segments: [Segment]

    /// Longest template or filled path, in UTF-8 bytes (as the `topic-key` mapper).
    public static let maxBytes = 1024

    public init(_ text: String) throws(EndpointError) {
        guard text.hasPrefix("/") else { throw EndpointError("an endpoint template starts with '/', as in /scores/{sport}") }
        guard text.utf8.count <= Self.maxBytes else { throw EndpointError("an endpoint template is at most \(Self.maxBytes) bytes") }
        var segments: [Segment] = []
        var names: Set<String> = []
        for part in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw EndpointError("'\(text)' has an empty segment ('//' or a trailing '/')") }
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count >= 2 {
                let name = String(part.dropFirst().dropLast())
                guard TemplateParameter.isValidName(name) else {
                    throw EndpointError("'{\(name)}' is not a parameter name (a letter or '_', then letters, digits or '_')")
                }
                guard names.insert(name).inserted else { throw EndpointError("parameter '{\(name)}' appears twice in '\(text)'") }
                segments.append(.parameter(name))
            } else {
                guard !part.contains(where: { "{}*".contains($0) }) else {
                    throw EndpointError("segment '\(part)' of '\(text)': '{name}' must be a whole segment, and '*' is not allowed")
                }
                if let problem = TemplateParameter.problem(inValue: String(part)) {
                    throw EndpointError("segment '\(part)' of '\(text)' \(problem)")
                }
                segments.append(.literal(String(part)))
            }
        }
        self.text = text
        self.segments = segments
    }

    public var description: String { text }

    /// The parameter names, in order.
    public var parameters: [String] {
        segments.compactMap { if case .parameter(let name) = $0 { name } else { nil } }
    }

    /// The parameter values when `path` matches, else nil.
    public func match(_ path: String) -> [String: String]? {
        guard path.hasPrefix("/") else { return nil }
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == segments.count else { return nil }
        var values: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let literal):
                guard part == literal else { return nil }
            case .parameter(let name):
                guard TemplateParameter.problem(inValue: String(part)) == nil else { return nil }
                values[name] = String(part)
            }
        }
        return values
    }

    /// The path with every parameter replaced by its value (values are
    /// checked by the caller: `TemplateParameter.problem(inValue:)`).
    public func fill(_ values: [String: String]) -> String {
        "/" + segments.map { segment in
            switch segment {
            case .literal(let literal): literal
            case .parameter(let name): values[name] ?? ""
            }
        }.joined(separator: "/")
    }

    /// True when some path matches both templates.
    public func overlaps(_ other: EndpointTemplate) -> Bool {
        guard segments.count == other.segments.count else { return false }
        return zip(segments, other.segments).allSatisfy { a, b in
            if case .literal(let x) = a, case .literal(let y) = b { return x == y }
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
    /// value's name: "segment 'x' <reason>".
    public static func problem(inValue value: String) -> String? {
        if value.isEmpty { return "is empty" }
        if value.contains("/") { return "contains '/'" }
        if value.contains("*") { return "contains '*'" }
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "contains a control character"
        }
        return nil
    }
}
