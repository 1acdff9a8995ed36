import Foundation
import Testing

@testable import streamgate

/// `log_format`: each line parses as what it claims to be, whatever the
/// message holds.
@Suite("Structured log lines")
struct StructuredLogHandlerTests {
    static let fields = [("ts", "2026-12-03T14:00:00.000Z"), ("level", "info"), ("logger", "streamgate"),
                         ("msg", "a \"quoted\" line\nwith\ttabs, \u{1} and = signs"), ("url", "ws://h:1/ws")]

    @Test func jsonLinesParseBackToTheFields() throws {
        let line = StructuredLogHandler.line(Self.fields, format: .json)
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object == Dictionary(uniqueKeysWithValues: Self.fields))
    }

    @Test func logfmtQuotesWhatIsNotOneWord() {
        let line = StructuredLogHandler.line(Self.fields, format: .logfmt)
        #expect(line == #"ts=2026-12-03T14:00:00.000Z level=info logger=streamgate msg="a \"quoted\" line\nwith\ttabs, \u0001 and = signs" url=ws://h:1/ws"#)
        #expect(StructuredLogHandler.logfmtValue("") == #""""#)
    }
}
