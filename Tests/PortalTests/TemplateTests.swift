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
}
