import Foundation
import StreamgatePluginAPI
import Testing

@testable import streamgate

/// `check-config`'s every-problem check: taking the offending key out.
@Suite("Configuration checker")
struct ConfigurationCheckerTests {
    static func json(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    @Test func removesByPathThroughObjectsArraysAndKeysWithDots() throws {
        let root = try Self.json(#"""
            {"listen": {"port": 1, "host": "h"}, "limits": {"allowed_origins": ["a", "", "c"]},
             "source": {"options": {"properties": {"fetch.wait.max.ms": "x", "fetch": "y"}}}}
            """#)
        func without(_ path: String) -> JSONValue? { ConfigurationChecker.removing(path, from: root) }
        #expect(try without("listen.port") == Self.json(#"""
            {"listen": {"host": "h"}, "limits": {"allowed_origins": ["a", "", "c"]},
             "source": {"options": {"properties": {"fetch.wait.max.ms": "x", "fetch": "y"}}}}
            """#))
        #expect(try without("limits.allowed_origins[1]") == Self.json(#"""
            {"listen": {"port": 1, "host": "h"}, "limits": {"allowed_origins": ["a", "c"]},
             "source": {"options": {"properties": {"fetch.wait.max.ms": "x", "fetch": "y"}}}}
            """#))
        #expect(try without("source.options.properties.fetch.wait.max.ms") == Self.json(#"""
            {"listen": {"port": 1, "host": "h"}, "limits": {"allowed_origins": ["a", "", "c"]},
             "source": {"options": {"properties": {"fetch": "y"}}}}
            """#), "the longest key that begins the path")
        #expect(without("listen.nothing") == nil)
        #expect(without("limits.allowed_origins[9]") == nil)
        #expect(try without("source") == Self.json(#"{"listen": {"port": 1, "host": "h"}, "limits": {"allowed_origins": ["a", "", "c"]}}"#))
    }

    @Test func reportsEveryProblemThenStops() {
        let file = #"{"listen": {"port": 70000}, "log_level": "loud", "source": {"plugin": "nope"}}"#
        let problems = ConfigurationChecker.problems(in: Data(file.utf8), file: "f") { .builtin(checkingOnly: true) }
        #expect(problems.map(\.key) == ["listen.port", "log_level", "source.plugin"])
        let syntax = ConfigurationChecker.problems(in: Data("{,}".utf8), file: "f") { .builtin(checkingOnly: true) }
        #expect(syntax.count == 1 && syntax[0].message.hasPrefix("not valid JSON: line 1, column 2"))
    }
}
