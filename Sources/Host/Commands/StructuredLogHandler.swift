import Foundation
import Logging
import Synchronization

/// One log line per event in a format machines parse (`log_format`):
/// - `json`: `{"ts":"…","level":"info","logger":"streamgate.admin","msg":"…","url":"…"}`
/// - `logfmt`: `ts=… level=info logger=streamgate.admin msg="…" url=…`
/// Metadata becomes fields of the line. Lines go to standard error whole:
/// a lock keeps lines from threads apart.
struct StructuredLogHandler: LogHandler {
    enum Format: String, CaseIterable, Sendable {
        case json, logfmt
    }

    let label: String
    let format: Format
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    private static let output = Mutex<Void>(())

    init(label: String, format: Format, level: Logger.Level) {
        self.label = label
        self.format = format
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))),
            ("level", event.level.rawValue), ("logger", label), ("msg", event.message.description),
        ]
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in all.keys.sorted() where !["ts", "level", "logger", "msg"].contains(key) {
            fields.append((key, all[key]!.description))
        }
        let line = Self.line(fields, format: format) + "\n"
        Self.output.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }

    static func line(_ fields: [(String, String)], format: Format) -> String {
        switch format {
        case .json:
            "{" + fields.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}"
        case .logfmt:
            fields.map { "\($0.0)=\(logfmtValue($0.1))" }.joined(separator: " ")
        }
    }

    /// A JSON string literal: the escaping the client protocol's frames use.
    static func jsonString(_ text: String) -> String { ClientProtocol.jsonString(text) }

    /// Bare when it is one plain word, else quoted with JSON's escapes.
    static func logfmtValue(_ text: String) -> String {
        let plain = !text.isEmpty && text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "\"" && $0 != "=" && $0 != "\\" && $0.value != 0x7F }
        return plain ? text : jsonString(text)
    }
}
