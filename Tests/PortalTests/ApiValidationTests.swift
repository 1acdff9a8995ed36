import StreamgatePluginAPI
@testable import StreamgatePortal
import Testing

/// An API definition as a request body would carry it.
func apiJSON(_ name: String, _ endpoints: [[String: JSONValue]], extra: [String: JSONValue] = [:]) -> JSONValue {
    .object(["name": .string(name), "endpoints": .array(endpoints.map { .object($0) })].merging(extra) { $1 })
}

func endpointJSON(_ path: String, _ topic: String, _ key: String, _ actions: [String] = ["subscribe"]) -> [String: JSONValue] {
    ["path": .string(path), "topic": .string(topic), "key": .string(key), "actions": .array(actions.map(JSONValue.string))]
}

/// The field a definition is refused for.
func refusedField(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as ConfigurationError {
        return error.key
    } catch {
        return "unexpected \(error)"
    }
}

@Suite("API definitions and the catalog rules")
struct ApiValidationTests {
    @Test func aGoodDefinitionParsesAndRoundTrips() throws {
        let json = apiJSON("live-scores", [
            endpointJSON("/scores/live/{sport}", "scores", "live/{sport}", ["subscribe", "publish"]),
            endpointJSON("/scores/final/{sport}", "scores", "final/{sport}"),
        ], extra: ["version": .string("2.1.0"), "owner": .string("sports-team")])
        let api = try ApiDefinition(json: json)
        #expect(api.endpoints.count == 2 && api.version == "2.1.0" && api.owner == "sports-team")
        #expect(api.endpoints[0].actions == [.subscribe, .publish])
        #expect(try ApiDefinition(json: api.json) == api)
    }

    @Test func eachMistakeNamesItsField() {
        let good = endpointJSON("/a/{x}", "t", "k/{x}")
        func field(_ json: JSONValue, name: String? = nil) -> String? { refusedField { _ = try ApiDefinition(json: json, name: name) } }
        #expect(field(apiJSON("Bad Name", [good])) == "name")
        #expect(field(apiJSON("a", [])) == "endpoints")
        #expect(field(apiJSON("a", [good.merging(["path": "/a/{x"]) { $1 }])) == "endpoints[0].path")
        #expect(field(apiJSON("a", [good.merging(["topic": "bad topic"]) { $1 }])) == "endpoints[0].topic")
        #expect(field(apiJSON("a", [good.merging(["key": "k/{y}"]) { $1 }])) == "endpoints[0].key", "parameters differ")
        #expect(field(apiJSON("a", [good.merging(["key": "{x}{y}"]) { $1 }])) == "endpoints[0].key")
        #expect(field(apiJSON("a", [good.merging(["actions": .array([.string("read")])]) { $1 }])) == "endpoints[0].actions[0]")
        #expect(field(apiJSON("a", [good.merging(["actions": .array([])]) { $1 }])) == "endpoints[0].actions")
        #expect(field(apiJSON("a", [good.merging(["schema": .string("x")]) { $1 }])) == "endpoints[0].schema")
        #expect(field(apiJSON("a", [good.merging(["colour": .string("x")]) { $1 }])) == "endpoints[0].colour", "unknown fields are errors")
        #expect(field(apiJSON("a", [good, endpointJSON("/a/b", "t", "other")])) == "endpoints[1].path", "paths overlap")
        #expect(field(apiJSON("a", [good]), name: "b") == "name", "a PUT cannot rename")
    }

    @Test func theCatalogRefusesOverlapsAcrossApisAndUnknownTopics() throws {
        let scores = try ApiDefinition(json: apiJSON("scores", [endpointJSON("/scores/live/{sport}", "scores", "live/{sport}")]))
        func field(_ endpoint: [String: JSONValue], topics: Set<String>? = nil) throws -> String? {
            let candidate = try ApiDefinition(json: apiJSON("other", [endpoint]))
            return refusedField { try ApiCatalogRules.check(candidate, against: [scores], knownTopics: topics) }
        }
        #expect(try field(endpointJSON("/scores/{kind}/tennis", "x", "k/{kind}")) == "endpoints[0].path")
        #expect(try field(endpointJSON("/results/{sport}", "scores", "live/{sport}")) == "endpoints[0].key", "same topic, same keys")
        #expect(try field(endpointJSON("/results/{sport}", "scores", "li{sport}/x")) == "endpoints[0].key", "live/x matches both")
        #expect(try field(endpointJSON("/results/{sport}", "scores", "li{sport}")) == nil, "another segment count never overlaps")
        #expect(try field(endpointJSON("/results/{sport}", "scores", "lives-{sport}")) == nil)
        #expect(try field(endpointJSON("/results/{sport}", "results", "live/{sport}")) == nil, "another topic")
        #expect(try field(endpointJSON("/results/{sport}", "results", "live/{sport}"), topics: ["scores"]) == "endpoints[0].topic")
        // Within one API, two key templates on one topic.
        let twice = try ApiDefinition(json: apiJSON("twice", [endpointJSON("/x/{a}", "t", "k/{a}"), endpointJSON("/y/{a}", "t", "k/{a}")]))
        #expect(refusedField { try ApiCatalogRules.check(twice, against: [], knownTopics: nil) } == "endpoints[1].key")
    }

    /// A key literal may hold '*' (a Kafka key is any bytes) but a value
    /// never does, so `live/*` is no key of `live/{sport}`: the catalog used
    /// to refuse such endpoints as overlapping.
    @Test func aStarInAKeyLiteralOverlapsNoParameter() throws {
        let scores = try ApiDefinition(json: apiJSON("scores", [endpointJSON("/scores/live/{sport}", "scores", "live/{sport}")]))
        func field(_ endpoint: [String: JSONValue]) throws -> String? {
            let candidate = try ApiDefinition(json: apiJSON("other", [endpoint]))
            return refusedField { try ApiCatalogRules.check(candidate, against: [scores], knownTopics: nil) }
        }
        #expect(try field(endpointJSON("/results/all", "scores", "live/*")) == nil)
        #expect(try field(endpointJSON("/results/{sport}", "scores", "live/x*{sport}")) == nil, "sport would start with '*'")
        #expect(try field(endpointJSON("/results/all", "scores", "live/all")) == "endpoints[0].key")
        #expect(try field(endpointJSON("/results/{sport}", "scores", "live/x{sport}")) == "endpoints[0].key", "live/xy matches both")
        #expect(try field(endpointJSON("/results/{sport}", "scores", "live/*{sport}")) == nil)
    }

    @Test func mintRequestsAreCheckedAgainstTheApi() throws {
        let api = try ApiDefinition(json: apiJSON("orders", [
            endpointJSON("/orders/{user}/{item}", "orders", "{user}/{item}", ["subscribe", "publish"]),
            endpointJSON("/prices/{item}", "prices", "{item}"),
        ]))
        let everything = try MintRequest(json: .object(["subject": "alice", "subscribe": true, "publish": true]), api: api, maxSeconds: 100_000)
        #expect(everything.subscribe == ["/orders/*/*", "/prices/*"])
        #expect(everything.publish == ["/orders/*/*"], "only endpoints allowing publish")
        #expect(everything.expiresIn == 86_400, "a day unless asked")
        let own = try MintRequest(json: .object(["subject": "alice", "subscribe": .array(["/orders/{sub}/**"]), "expires_in": 600]),
                                  api: api, maxSeconds: 3600)
        #expect(own.subscribe == ["/orders/{sub}/**"] && own.publish.isEmpty && own.expiresIn == 600)
        func field(_ body: [String: JSONValue]) -> String? { refusedField { _ = try MintRequest(json: .object(body), api: api, maxSeconds: 3600) } }
        #expect(field(["subscribe": true]) == "subject")
        #expect(field(["subject": "a"]) == "subscribe", "no rights at all")
        #expect(field(["subject": "a", "subscribe": .array(["/nowhere/**"])]) == "subscribe[0]")
        #expect(field(["subject": "a", "publish": .array(["/prices/*"])]) == "publish[0]", "prices allow no publish")
        #expect(field(["subject": "a", "subscribe": .array(["/orders/{tenant}/*"])]) == "subscribe[0]", "unbound claim")
        #expect(field(["subject": "a/b", "subscribe": .array(["/orders/{sub}/*"])]) == "subscribe[0]", "sub cannot be a segment")
        #expect(field(["subject": "a", "subscribe": true, "expires_in": 7200]) == "expires_in")
        #expect(field(["subject": "a", "subscribe": true, "claims": .object(["exp": "1"])]) == "claims.exp")
        #expect(field(["subject": "a", "subscribe": true, "scope": "x"]) == "scope")
        #expect(field(["subject": "a", "subscribe": .array(["/orders/**/**/**/**/**"])]) == "subscribe[0]", "at most four '**'")
        #expect(field(["subject": "a", "subscribe": .array(Array(repeating: "/orders/*/*", count: 65))]) == "subscribe")
        let tenant = try MintRequest(json: .object(["subject": "a", "subscribe": .array(["/orders/{tenant}/*"]), "claims": .object(["tenant": "acme"])]),
                                     api: api, maxSeconds: 3600)
        #expect(tenant.claims == ["tenant": "acme"])
    }
}
