/// Rights patterns bound to a token's claims (since API 2.2): a whole
/// segment `{name}` stands for the claim `name`, so `/orders/{sub}/**` in
/// alice's token is `/orders/alice/**`. The portal checks patterns with it
/// when it mints; the `portal` authorizer binds them when it verifies.
public enum ClaimBinding {
    /// The pattern with every `{claim}` segment replaced by the claim's
    /// value; throws when a claim is missing or its value cannot be one
    /// segment (empty, `/`, `*`, control characters). Segments and braces
    /// are found as bytes, as the pattern is matched; a claim's value keeps
    /// its bytes.
    public static func bind(_ pattern: String, claims: [String: String]) throws(EndpointError) -> String {
        let open = UInt8(ascii: "{"), close = UInt8(ascii: "}")
        guard pattern.utf8.contains(where: { $0 == open || $0 == close }) else { return pattern }
        var segments: [String] = []
        for segment in UTF8Bytes.segments(pattern.utf8[...]) {
            if segment.count >= 2 && segment.first == open && segment.last == close {
                let name = UTF8Bytes.string(segment.dropFirst().dropLast())
                guard let value = claims[name] else { throw EndpointError("'{\(name)}' names no claim of the token") }
                if let problem = TemplateParameter.problem(inValue: value) {
                    throw EndpointError("claim '\(name)' cannot stand for a segment: its value \(problem)")
                }
                segments.append(value)
            } else {
                guard !segment.contains(open) && !segment.contains(close) else { throw EndpointError("'{claim}' must be a whole segment") }
                segments.append(UTF8Bytes.string(segment))
            }
        }
        return segments.joined(separator: "/")
    }
}
