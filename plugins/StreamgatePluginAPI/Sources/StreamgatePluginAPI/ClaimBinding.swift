/// Rights patterns bound to a token's claims (since API 2.2): a whole
/// segment `{name}` stands for the claim `name`, so `/orders/{sub}/**` in
/// alice's token is `/orders/alice/**`. The portal checks patterns with it
/// when it mints; the `portal` authorizer binds them when it verifies.
public enum ClaimBinding {
    /// The pattern with every `{claim}` segment replaced by the claim's
    /// value; throws when a claim is missing or its value cannot be one
    /// segment (empty, `/`, `*`, control characters).
    public static func bind(_ pattern: String, claims: [String: String]) throws(EndpointError) -> String {
        guard pattern.contains("{") || pattern.contains("}") else { return pattern }
        var segments: [String] = []
        for segment in pattern.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.hasPrefix("{") && segment.hasSuffix("}") && segment.count >= 2 {
                let name = String(segment.dropFirst().dropLast())
                guard let value = claims[name] else { throw EndpointError("'{\(name)}' names no claim of the token") }
                if let problem = TemplateParameter.problem(inValue: value) {
                    throw EndpointError("claim '\(name)' cannot stand for a segment: its value \(problem)")
                }
                segments.append(value)
            } else {
                guard !segment.contains("{") && !segment.contains("}") else { throw EndpointError("'{claim}' must be a whole segment") }
                segments.append(String(segment))
            }
        }
        return segments.joined(separator: "/")
    }
}
