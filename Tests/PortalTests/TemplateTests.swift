import StreamgatePluginAPI
import Testing

@Suite("Endpoint and key templates")
struct TemplateTests {
    @Test func endpointTemplatesMatchAndFillWholeSegments() throws {
        let template = try EndpointTemplate("/scores/live/{sport}")
        #expect(template.parameters == ["sport"])
        #expect(template.match("/scores/live/tennis") == ["sport": "tennis"])
        #expect(template.match("/scores/live") == nil)
        #expect(template.match("/scores/live/tennis/x") == nil)
        #expect(template.match("/scores/live/") == nil, "a parameter is never empty")
        #expect(template.match("/scores/live/a*b") == nil, "'*' never stands in a value")
        #expect(template.match("/scores/dead/tennis") == nil)
        #expect(template.fill(["sport": "golf"]) == "/scores/live/golf")
    }

    @Test(arguments: [
        ("scores/{x}", "starts with '/'"),
        ("/scores//x", "empty segment"),
        ("/scores/", "empty segment"),
        ("/scores/pre{x}", "whole segment"),
        ("/scores/{1x}", "not a parameter name"),
        ("/a/{x}/{x}", "appears twice"),
        ("/a/*", "'*' is not allowed"),
    ])
    func badEndpointTemplatesAreRefusedWithTheReason(text: String, reason: String) {
        #expect { try EndpointTemplate(text) } throws: { error in
            (error as? EndpointError)?.reason.contains(reason) == true
        }
    }

    @Test func endpointTemplatesOverlapWhenSomePathMatchesBoth() throws {
        func overlap(_ a: String, _ b: String) throws -> Bool { try EndpointTemplate(a).overlaps(EndpointTemplate(b)) }
        #expect(try overlap("/scores/live/{sport}", "/scores/{kind}/tennis"))
        #expect(try overlap("/a/{x}", "/a/b"))
        #expect(try !overlap("/a/{x}", "/a/b/c"))
        #expect(try !overlap("/scores/live/{s}", "/scores/dead/{s}"))
    }

    @Test func keyTemplatesTakeTheRestOfTheirSegment() throws {
        let template = try KeyTemplate("user-{id}/orders/{order}")
        #expect(template.parameters == ["id", "order"])
        #expect(template.match("user-42/orders/7") == ["id": "42", "order": "7"])
        #expect(template.match("user-/orders/7") == nil, "a parameter is never empty")
        #expect(template.match("usr-42/orders/7") == nil)
        #expect(template.match("user-42/orders/7/x") == nil)
        #expect(template.fill(["id": "a", "order": "b"]) == "user-a/orders/b")
        #expect(try KeyTemplate("live").match("live") == [:])
    }

    @Test(arguments: [
        ("", "not empty"),
        ("{a}{b}", "must end its segment"),
        ("{a}-x", "must end its segment"),
        ("a}", "without '{'"),
        ("{a}/{a}", "appears twice"),
        ("{9}", "not a parameter name"),
    ])
    func badKeyTemplatesAreRefusedWithTheReason(text: String, reason: String) {
        #expect { try KeyTemplate(text) } throws: { error in
            (error as? EndpointError)?.reason.contains(reason) == true
        }
    }

    @Test func keyTemplatesOverlapExactlyWhenSomeKeyMatchesBoth() throws {
        func overlap(_ a: String, _ b: String) throws -> Bool { try KeyTemplate(a).overlaps(KeyTemplate(b)) }
        #expect(try overlap("live/{s}", "live/tennis"))
        #expect(try overlap("live/{s}", "li{x}/tennis"))
        #expect(try overlap("user-{id}", "user-{name}"))
        #expect(try overlap("user-{id}", "use{x}"))
        #expect(try !overlap("user-{id}", "user-"), "the value would be empty")
        #expect(try !overlap("live/{s}", "dead/{s}"))
        #expect(try !overlap("live/{s}", "live/{s}/x"))
        #expect(try !overlap("a-{x}", "b-{x}"))
    }

    /// Whatever values fill a template, matching the result gives them back
    /// (the gateway maps a path to a key and the key back to the same path).
    @Test func fillingThenMatchingRoundTrips() throws {
        let path = try EndpointTemplate("/orders/{user}/{item}")
        let key = try KeyTemplate("u-{user}/i{item}")
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcXYZ019-_.~é😀")
        for _ in 0..<200 {
            let values = ["user": String((0..<Int.random(in: 1...6, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }),
                          "item": String((0..<Int.random(in: 1...6, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })]
            #expect(path.match(path.fill(values)) == values)
            #expect(key.match(key.fill(values)) == values)
        }
    }

    @Test func patternsAreRestrictedToATemplatesPaths() throws {
        func restricted(_ pattern: String, _ template: String) throws -> [String] {
            try EndpointPattern(pattern).restricted(to: EndpointTemplate(template)).map(\.text).sorted()
        }
        #expect(try restricted("/orders/alice/**", "/orders/{user}/{item}") == ["/orders/alice/*"])
        #expect(try restricted("/**", "/scores/live/{sport}") == ["/scores/live/*"])
        #expect(try restricted("/scores/*/tennis", "/scores/live/{sport}") == ["/scores/live/tennis"])
        #expect(try restricted("/scores/dead/*", "/scores/live/{sport}") == [])
        #expect(try restricted("/a/**/c", "/a/{x}/c") == ["/a/*/c"])
        #expect(try restricted("/a/**/**", "/a/{x}") == ["/a/*"])
        #expect(try restricted("/a/b/c/d", "/a/{x}") == [])
        // Every result matches only paths the template matches, and the pattern matches too.
        let template = try EndpointTemplate("/t/{a}/{b}")
        for text in ["/**", "/t/**", "/*/x/**", "/t/*/y"] {
            for pattern in try EndpointPattern(text).restricted(to: template) {
                let example = "/" + pattern.text.dropFirst().split(separator: "/").map { $0 == "*" ? "v" : String($0) }.joined(separator: "/")
                let original = try EndpointPattern(text)
                #expect(template.match(example) != nil && original.matches(example), "\(text) → \(pattern)")
            }
        }
    }

    /// A hostile pattern stays cheap: without the dead-state memo this
    /// search takes about 10^10 steps.
    @Test func restrictingAHostilePatternIsBounded() throws {
        let long = try EndpointTemplate("/" + (0..<40).map { "s\($0)" }.joined(separator: "/"))
        let hostile = try EndpointPattern("/" + Array(repeating: "**", count: 10).joined(separator: "/") + "/x")
        let clock = ContinuousClock()
        let took = clock.measure { #expect(hostile.restricted(to: long).isEmpty) }
        #expect(took < .seconds(1), "took \(took)")
        let spaced = try EndpointPattern("/**/s1/**/s3/**/s5/**/s7/**")
        #expect(spaced.restricted(to: long).map(\.text) == [long.text], "the one path both match")
    }

    @Test func claimsBindWholeSegments() throws {
        #expect(try ClaimBinding.bind("/orders/{sub}/**", claims: ["sub": "alice"]) == "/orders/alice/**")
        #expect(try ClaimBinding.bind("/t/{tenant}/{sub}", claims: ["sub": "a", "tenant": "acme"]) == "/t/acme/a")
        #expect(throws: EndpointError.self) { try ClaimBinding.bind("/orders/{sub}", claims: [:]) }
        #expect(throws: EndpointError.self) { try ClaimBinding.bind("/orders/{sub}", claims: ["sub": "a/b"]) }
        #expect(throws: EndpointError.self) { try ClaimBinding.bind("/orders/{sub}", claims: ["sub": "*"]) }
        #expect(throws: EndpointError.self) { try ClaimBinding.bind("/orders/x{sub}", claims: ["sub": "a"]) }
    }

    // MARK: - Bytes, not Characters

    /// Each value's UTF-8 bytes: Swift's `==` on strings cannot tell "é"
    /// (U+00E9) from "e" + U+0301, and these tests must.
    private func bytes(_ values: [String: String]?) -> [String: [UInt8]]? { values?.mapValues { Array($0.utf8) } }

    @Test func endpointTemplatesMatchBytesNotCharacters() throws {
        let precomposed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(precomposed == decomposed, "Swift calls them equal; the wire carries other bytes")
        let menu = try EndpointTemplate("/menu/\(precomposed)/{dish}")
        #expect(menu.match("/menu/\(decomposed)/soup") == nil, "other bytes are another path")
        #expect(bytes(menu.match("/menu/\(precomposed)/soup")) == ["dish": Array("soup".utf8)])
        #expect(try !menu.overlaps(EndpointTemplate("/menu/\(decomposed)/{dish}")))
        #expect(try menu.overlaps(EndpointTemplate("/menu/\(precomposed)/soup")))
        // As Characters, "/" then U+0301 is one grapheme and no separator.
        let live = try EndpointTemplate("/scores/live/{sport}")
        #expect(bytes(live.match(live.fill(["sport": "\u{301}x"]))) == ["sport": Array("\u{301}x".utf8)])
        #expect(bytes(live.match("/scores/live/e\u{301}")) == ["sport": Array("e\u{301}".utf8)], "a value keeps its bytes")
        #expect(try EndpointTemplate("/a/\u{301}b").segments.count == 2)
        #expect(try EndpointTemplate("/\u{301}a").match("/\u{301}a") == [:], "the leading '/' is a byte")
    }

    @Test func keyTemplatesMatchBytesNotCharacters() throws {
        let template = try KeyTemplate("caf\u{E9}-{id}")
        #expect(template.match("cafe\u{301}-42") == nil, "other bytes are another key")
        #expect(bytes(template.match("caf\u{E9}-42")) == ["id": Array("42".utf8)])
        let user = try KeyTemplate("u-{user}")
        #expect(bytes(user.match(user.fill(["user": "\u{301}x"]))) == ["user": Array("\u{301}x".utf8)])
        func overlap(_ a: String, _ b: String) throws -> Bool { try KeyTemplate(a).overlaps(KeyTemplate(b)) }
        #expect(try !overlap("caf\u{E9}", "cafe\u{301}"))
        #expect(try !overlap("caf\u{E9}{x}", "cafe\u{301}{y}"))
        // As Characters "cafe\u{301}" does not start with "cafe" (its last
        // Character is "é"); as bytes it does, and the key "cafe\u{301}z"
        // matches both templates.
        #expect(try overlap("cafe{x}", "cafe\u{301}"))
        #expect(try overlap("cafe{x}", "cafe\u{301}{y}"))
    }

    /// Whatever values fill a template, matching the result gives back the
    /// same bytes, with values that start with a combining mark or a joiner.
    @Test func fillingThenMatchingRoundTripsByteForByte() throws {
        let path = try EndpointTemplate("/orders/{user}/{item}")
        let key = try KeyTemplate("u-{user}/i{item}")
        let scalars: [Unicode.Scalar] = ["a", "e", "\u{301}", "\u{E9}", "-", "{", "}", "\u{200D}", "\u{1F600}"]
        var generator = SystemRandomNumberGenerator()
        func randomValue() -> String {
            var text = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 1...5, using: &generator) { text.append(scalars.randomElement(using: &generator)!) }
            return String(text)
        }
        for _ in 0..<300 {
            let values = ["user": randomValue(), "item": randomValue()]
            #expect(bytes(path.match(path.fill(values))) == bytes(values), "\(values)")
            #expect(bytes(key.match(key.fill(values))) == bytes(values), "\(values)")
        }
    }

    @Test func slashesStarsAndPatternsAreBytes() throws {
        // "/" or "*" followed by a combining mark is one Character, neither "/" nor "*".
        #expect(TemplateParameter.problem(inValue: "a/\u{301}b") == "contains '/'")
        #expect(TemplateParameter.problem(inValue: "*\u{301}") == "contains '*'")
        #expect(throws: EndpointError.self, "a claim cannot add a segment") {
            try ClaimBinding.bind("/orders/{sub}/**", claims: ["sub": "alice/\u{301}x"])
        }
        #expect(try Array(ClaimBinding.bind("/orders/{sub}", claims: ["sub": "e\u{301}"]).utf8) == Array("/orders/e\u{301}".utf8))
        #expect(throws: EndpointError.self) { try EndpointTemplate("/a/b*\u{301}") }
        #expect(throws: EndpointError.self) { try EndpointPattern("/a*\u{301}") }
        let precomposed = try EndpointPattern("/menu/caf\u{E9}")
        #expect(precomposed.matches("/menu/caf\u{E9}"))
        #expect(!precomposed.matches("/menu/cafe\u{301}"))
        #expect(precomposed != (try EndpointPattern("/menu/cafe\u{301}")))
        #expect(try EndpointPattern("/x/*").matches("/x/\u{301}"), "U+0301 alone is a segment")
        #expect(try EndpointPattern("/menu/cafe\u{301}").restricted(to: EndpointTemplate("/menu/caf\u{E9}")).isEmpty)
        let restricted = try EndpointPattern("/menu/cafe\u{301}").restricted(to: EndpointTemplate("/menu/{dish}"))
        #expect(restricted.map { Array($0.text.utf8) } == [Array("/menu/cafe\u{301}".utf8)])
    }

    // MARK: - Overlaps: exactly when something matches both

    /// A key template's literal may hold '*' (a Kafka key is any bytes), but
    /// a parameter's value never does (it becomes a path segment, where '*'
    /// would be a pattern). So no key matches both `a*` and `a{x}`: x would
    /// be "*". The same holds for `a*{y}` against `a{x}` (x would start with
    /// '*'). These were reported as overlaps.
    @Test func aStarInAKeyLiteralIsNoParameterValue() throws {
        func overlap(_ a: String, _ b: String) throws -> Bool { try KeyTemplate(a).overlaps(KeyTemplate(b)) }
        #expect(try KeyTemplate("a{x}").match("a*") == nil)
        #expect(try !overlap("a*", "a{x}"))
        #expect(try !overlap("a{x}", "a*"))
        #expect(try !overlap("live/*", "live/{sport}"))
        #expect(try !overlap("*", "{x}"))
        #expect(try !overlap("a*{y}", "a{x}"), "x would start with '*'")
        #expect(try !overlap("a{x}", "a*b{y}"))
        // The true overlaps next to them.
        #expect(try overlap("a*", "a*"))
        #expect(try overlap("a*b", "a*{x}"), "the key a*b, x = b")
        #expect(try overlap("a*{x}", "a*{y}"), "a*c")
        #expect(try overlap("a*{x}", "a*b{y}"), "a*bc")
        #expect(try overlap("a*b{x}", "a*{y}"), "a*bc")
        #expect(try overlap("ab", "a{x}"))
        #expect(try overlap("ab{y}", "a{x}"))
        #expect(try overlap("*/{x}", "*/y"))
    }

    /// Every string of up to `length` scalars of `alphabet`, the empty one first.
    private func strings(of alphabet: [String], upTo length: Int) -> [String] {
        var all = [""], last = [""]
        for _ in 0..<length {
            last = last.flatMap { prefix in alphabet.map { prefix + $0 } }
            all += last
        }
        return all
    }

    /// Every pair of small one-segment key templates, against every key that
    /// could tell: `overlaps` is true exactly when some key matches both. A
    /// witness needs at most the longer prefix and one more scalar, so keys
    /// of three scalars suffice. Keys are told apart by index, not `==`.
    @Test func keyOverlapsAgreeWithMatchingOnEverySmallCase() throws {
        let alphabet = ["a", "*", "e", "\u{301}", "\u{E9}"]
        let keys = strings(of: alphabet, upTo: 3).filter { !$0.isEmpty }
        var templates: [KeyTemplate] = []
        for prefix in strings(of: alphabet, upTo: 2) {
            if !prefix.isEmpty { templates.append(try KeyTemplate(prefix)) }
            templates.append(try KeyTemplate(prefix + "{p}"))
        }
        let matched = templates.map { template in Set(keys.indices.filter { template.match(keys[$0]) != nil }) }
        for (a, matchedByA) in zip(templates, matched) {
            for (b, matchedByB) in zip(templates, matched) {
                let witness = matchedByA.intersection(matchedByB).min().map { keys[$0].unicodeScalars.map(\.debugDescription) }
                #expect(a.overlaps(b) == (witness != nil), "\(a.text.unicodeScalars.map(\.debugDescription)) vs \(b.text.unicodeScalars.map(\.debugDescription)), witness \(witness ?? [])")
            }
        }
    }

    /// The same for endpoint templates, and for a pattern restricted to a
    /// template: on every path the template matches, some result matches
    /// exactly when the pattern does (no right lost), and a result never
    /// matches a path the pattern does not (no right gained). This pins the
    /// endpoint side, where `*` is only ever a whole segment.
    @Test func endpointOverlapsAgreeWithMatchingOnEverySmallCase() throws {
        let literals = ["a", "\u{E9}", "e\u{301}", "\u{301}"]
        var templates: [EndpointTemplate] = []
        for first in literals + ["{p}"] {
            templates.append(try EndpointTemplate("/" + first))
            for second in literals + ["{q}"] { templates.append(try EndpointTemplate("/" + first + "/" + second)) }
        }
        let pathSegments = literals + ["b", "*", ""]
        let paths = strings(of: pathSegments.map { "/" + $0 }, upTo: 2).filter { !$0.isEmpty }
        let matched = templates.map { template in Set(paths.indices.filter { template.match(paths[$0]) != nil }) }
        for (a, matchedByA) in zip(templates, matched) {
            for (b, matchedByB) in zip(templates, matched) {
                #expect(a.overlaps(b) == !matchedByA.isDisjoint(with: matchedByB), "\(a) vs \(b)")
            }
        }
        let patternSegments = ["a", "*", "**", "\u{E9}", "e\u{301}"]
        let patterns = try strings(of: patternSegments.map { "/" + $0 }, upTo: 3).filter { !$0.isEmpty }.map { try EndpointPattern($0) }
        for (template, matchedByTemplate) in zip(templates, matched) {
            for pattern in patterns {
                let results = pattern.restricted(to: template)
                for (i, path) in paths.enumerated() {
                    let byResult = results.contains { $0.matches(path) }
                    if matchedByTemplate.contains(i) {
                        #expect(byResult == pattern.matches(path), "\(pattern) within \(template) at \(path.unicodeScalars.map(\.debugDescription))")
                    } else if byResult {
                        #expect(pattern.matches(path), "\(pattern) within \(template) widened to \(path.unicodeScalars.map(\.debugDescription))")
                    }
                }
            }
        }
    }
}
