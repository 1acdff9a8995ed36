extension EndpointPattern {
    /// The patterns matching exactly the paths that match both this pattern
    /// and `template` (since API 2.2); empty when none does. For example
    /// `/orders/alice/**` within `/orders/{user}/{item}` is `/orders/alice/*`.
    ///
    /// Authorizers use it to bound a token's rights by the endpoints an API
    /// defines: a right is then never wider than an endpoint that exists with
    /// that action, whatever pattern the token carries. Every result has the
    /// template's length; a `**` is tried at each length it could take
    /// (at most `limit` results, so a hostile pattern stays cheap).
    public func restricted(to template: EndpointTemplate, limit: Int = 64) -> [EndpointPattern] {
        var results: [EndpointPattern] = []
        var seen: Set<String> = []
        var current: [String] = []

        func meet(_ p: Substring, _ t: EndpointTemplate.Segment) -> String? {
            switch t {
            case .literal(let literal):
                return p == "*" || p == literal ? literal : nil
            case .parameter:
                if p == "*" { return "*" }
                return TemplateParameter.problem(inValue: String(p)) == nil ? String(p) : nil
            }
        }

        func walk(_ pi: Int, _ ti: Int) {
            guard results.count < limit else { return }
            if pi == segments.count {
                if ti == template.segments.count {
                    let text = "/" + current.joined(separator: "/")
                    if seen.insert(text).inserted, let pattern = try? EndpointPattern(text) { results.append(pattern) }
                }
                return
            }
            if segments[pi] == "**" {
                var taken = 0
                while ti + taken <= template.segments.count {
                    walk(pi + 1, ti + taken)
                    guard ti + taken < template.segments.count, let one = meet("*", template.segments[ti + taken]) else { break }
                    current.append(one)
                    taken += 1
                }
                current.removeLast(taken)
                return
            }
            guard ti < template.segments.count, let one = meet(segments[pi], template.segments[ti]) else { return }
            current.append(one)
            walk(pi + 1, ti + 1)
            current.removeLast()
        }

        walk(0, 0)
        return results
    }
}
