extension EndpointPattern {
    /// The patterns matching exactly the paths that match both this pattern
    /// and `template` (since API 2.2); empty when none does. For example
    /// `/orders/alice/**` within `/orders/{user}/{item}` is `/orders/alice/*`.
    ///
    /// Authorizers use it to bound a token's rights by the endpoints an API
    /// defines: a right is then never wider than an endpoint that exists with
    /// that action, whatever pattern the token carries. Every result has the
    /// template's length; a `**` is tried at each length it could take.
    /// The work is bounded whatever the pattern: adjacent `**` count as one,
    /// a state that led nowhere is never explored again, and the search
    /// stops after `limit` results or `budget` steps. Cut short, it returns
    /// fewer patterns, never wider ones (rights fail closed).
    ///
    /// Segments meet byte-wise, as paths are compared on the wire: the
    /// literal `cafe` + U+0301 meets no template literal `caf` + U+00E9.
    public func restricted(to template: EndpointTemplate, limit: Int = 64, budget: Int = 20_000) -> [EndpointPattern] {
        var segments: [[UInt8]] = []
        for segment in self.segments where !(segment == Self.doubleStar && segments.last == Self.doubleStar) { segments.append(segment) }
        var results: [EndpointPattern] = []
        /// Result texts already found, as bytes (a `Set<String>` would take
        /// two canonically equivalent texts for one).
        var seen: Set<[UInt8]> = []
        var current: [String] = []
        /// (pattern index, template index) pairs from which no path matches.
        var dead: Set<Int> = []
        var steps = 0
        let width = template.segments.count + 1

        func meet(_ p: [UInt8], _ t: EndpointTemplate.Segment) -> String? {
            switch t {
            case .literal(let literal):
                return p == Self.star || p.elementsEqual(literal.utf8) ? literal : nil
            case .parameter:
                if p == Self.star { return "*" }
                let value = UTF8Bytes.string(p)
                return TemplateParameter.problem(inValue: value) == nil ? value : nil
            }
        }

        /// True when some completion from (pi, ti) matched.
        @discardableResult
        func walk(_ pi: Int, _ ti: Int) -> Bool {
            steps += 1
            guard results.count < limit, steps <= budget, !dead.contains(pi * width + ti) else { return false }
            var matched = false
            defer { if !matched { dead.insert(pi * width + ti) } }
            if pi == segments.count {
                if ti == template.segments.count {
                    matched = true
                    let text = "/" + current.joined(separator: "/")
                    if seen.insert(Array(text.utf8)).inserted, let pattern = try? EndpointPattern(text) { results.append(pattern) }
                }
                return matched
            }
            if segments[pi] == Self.doubleStar {
                var taken = 0
                while ti + taken <= template.segments.count {
                    if walk(pi + 1, ti + taken) { matched = true }
                    guard ti + taken < template.segments.count, let one = meet(Self.star, template.segments[ti + taken]) else { break }
                    current.append(one)
                    taken += 1
                }
                current.removeLast(taken)
                return matched
            }
            guard ti < template.segments.count, let one = meet(segments[pi], template.segments[ti]) else { return false }
            current.append(one)
            matched = walk(pi + 1, ti + 1)
            current.removeLast()
            return matched
        }

        walk(0, 0)
        return results
    }
}
