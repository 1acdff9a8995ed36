import Foundation
import StreamgatePluginAPI
import Testing

@testable import streamgate

let minimalSource = #""source":{"plugin":"kafka","options":{"brokers":"127.0.0.1:9092","topics":["t"]}}"#

func parseConfig(_ json: String, file: String = "gateway.json") throws(ConfigurationErrorInFile) -> GatewayConfiguration {
    try GatewayConfiguration.parse(Data(json.utf8), file: file)
}

func configError(_ json: String, file: String = "gateway.json") -> ConfigurationErrorInFile? {
    do {
        _ = try parseConfig(json, file: file)
        return nil
    } catch {
        return error
    }
}

@Suite("GatewayConfiguration.parse")
struct GatewayConfigurationTests {
    @Test func minimalConfigurationHasDefaults() throws {
        let c = try parseConfig("{\(minimalSource)}", file: "min.json")
        #expect(c.file == "min.json")
        #expect(c.host == "127.0.0.1")
        #expect(c.port == 8080)
        #expect(c.eventLoops == 0)
        #expect(c.streamPath == "/ws")
        #expect(c.echoPath == nil)
        #expect(c.maxMessageBytes == 64 * 1024)
        #expect(c.maxOutputBytes == 4 * 1024 * 1024)
        #expect(c.maxHeaderBytes == 8 * 1024)
        #expect(c.handshakeTimeoutMs == 10_000)
        #expect(c.closeTimeoutMs == 2_000)
        #expect(c.maxWriteDelayMs == 200)
        #expect(c.minWriteDelayMs == 0)
        #expect(c.consoleEnabled)
        #expect(c.logLevel == .info)
        #expect(c.authorization.map(\.name) == ["allow-all"])
        #expect(c.authorization.map(\.key) == ["authorization"])
        #expect(c.mapping.name == "topic-key")
        #expect(c.mapping.key == "mapping")
        #expect(c.source.name == "kafka")
        #expect(c.source.key == "source")
        #expect(c.source.options.path == "source.options")
        #expect(c.source.options.contains("brokers"))
        #expect(c.source.options.contains("topics"))
    }

    @Test func everySettingIsRead() throws {
        let c = try parseConfig("""
            {
              "listen": {"host": "::", "port": 9000},
              "event_loops": 4,
              "websocket": {"path": "/stream", "max_message_bytes": 1000, "max_output_bytes": 2048,
                            "max_header_bytes": 4096, "handshake_timeout_ms": 500, "close_timeout_ms": 300,
                            "max_write_delay_ms": 50, "min_write_delay_ms": 5},
              "echo": {"enabled": true, "path": "/e", "max_message_bytes": 200},
              "console": {"enabled": false},
              "log_level": "debug",
              "authorization": {"plugin": "allow-all"},
              "mapping": {"plugin": "topic-key", "options": {}},
              \(minimalSource)
            }
            """)
        #expect(c.host == "::")
        #expect(c.port == 9000)
        #expect(c.eventLoops == 4)
        #expect(c.streamPath == "/stream")
        #expect(c.maxMessageBytes == 1000)
        #expect(c.maxOutputBytes == 2048)
        #expect(c.maxHeaderBytes == 4096)
        #expect(c.handshakeTimeoutMs == 500)
        #expect(c.closeTimeoutMs == 300)
        #expect(c.maxWriteDelayMs == 50)
        #expect(c.minWriteDelayMs == 5)
        #expect(c.echoPath == "/e")
        #expect(c.echoMaxMessageBytes == 200)
        #expect(!c.consoleEnabled)
        #expect(c.logLevel == .debug)
    }

    @Test func echoEnabledDefaultsToSlashEcho() throws {
        let c = try parseConfig(#"{"echo":{"enabled":true},"# + minimalSource + "}")
        #expect(c.echoPath == "/echo")
    }

    @Test func errorDescriptionNamesFileAndKey() throws {
        let error = try #require(configError(#"{"listen":{"port":70000},"# + minimalSource + "}", file: "/etc/sg/bad.json"))
        #expect(error.file == "/etc/sg/bad.json")
        #expect(error.description.contains("/etc/sg/bad.json"))
        #expect(error.description.contains("listen.port"))
        #expect(error.description.contains("70000"))
        #expect(error.description.contains("0 to 65535"))
    }

    @Test func unknownTopLevelKey() throws {
        let error = try #require(configError(#"{"lisen":{},"# + minimalSource + "}"))
        #expect(error.message.contains("lisen"))
        #expect(error.description.contains("gateway.json"))
    }

    @Test func unknownNestedKey() throws {
        let error = try #require(configError(#"{"websocket":{"pth":"/x"},"# + minimalSource + "}"))
        #expect(error.message.contains("websocket.pth"))
    }

    @Test(arguments: [
        (#""listen":{"port":70000}"#, "listen.port"),
        (#""listen":{"port":-1}"#, "listen.port"),
        (#""listen":{"port":80.5}"#, "listen.port"),
        (#""listen":{"port":"80"}"#, "listen.port"),
        (#""listen":{"host":1}"#, "listen.host"),
        (#""listen":5"#, "listen"),
        (#""websocket":{"path":"ws"}"#, "websocket.path"),
        (#""websocket":{"max_message_bytes":10}"#, "websocket.max_message_bytes"),
        (#""websocket":{"max_write_delay_ms":60001}"#, "websocket.max_write_delay_ms"),
        (#""websocket":{"min_write_delay_ms":-1}"#, "websocket.min_write_delay_ms"),
        (#""event_loops":65"#, "event_loops"),
        (#""log_level":"loud""#, "log_level"),
        (#""console":{"enabled":"yes"}"#, "console.enabled"),
        (#""echo":{"enabled":true,"path":"/ws"}"#, "echo.path"),
        (#""echo":{"enabled":true,"path":"echo"}"#, "echo.path"),
        (#""mapping":{"plugin":"topic-key","extra":1}"#, "mapping.extra"),
    ])
    func errorNamesItsKey(fragment: String, key: String) throws {
        let error = try #require(configError("{\(fragment),\(minimalSource)}"))
        #expect(error.message.hasPrefix(key + ":"), "\(error.message)")
        #expect(error.description.contains(key))
        #expect(error.description.hasPrefix("gateway.json: "))
    }

    @Test func echoPathEqualToCustomWebsocketPath() throws {
        let error = try #require(configError(
            #"{"websocket":{"path":"/live"},"echo":{"enabled":true,"path":"/live"},"# + minimalSource + "}"))
        #expect(error.message.contains("echo.path"))
        #expect(error.message.contains("\"/live\""))
    }

    @Test func logLevelErrorListsLevels() throws {
        let error = try #require(configError(#"{"log_level":"loud","# + minimalSource + "}"))
        #expect(error.message.contains("\"loud\""))
        #expect(error.message.contains("\"debug\""))
        #expect(error.message.contains("\"error\""))
    }

    @Test func missingSource() throws {
        let error = try #require(configError("{}"))
        #expect(error.message.hasPrefix("source:"))
        #expect(error.message.contains("missing"))
    }

    @Test func sourceWithoutPluginName() throws {
        let error = try #require(configError(#"{"source":{"options":{}}}"#))
        #expect(error.message.hasPrefix("source.plugin:"))
    }

    @Test(arguments: ["", "{", "{\"source\":}", "not json", "{'source':1}", "{\"source\" 1}"])
    func invalidJSON(text: String) throws {
        let error = try #require(configError(text, file: "broken.json"))
        #expect(error.message.contains("not valid JSON"))
        #expect(error.description.hasPrefix("broken.json: "))
    }

    @Test func rootMustBeAnObject() throws {
        let error = try #require(configError("[1, 2]"))
        #expect(error.message.contains("expected an object"))
    }

    @Test func loadReportsUnreadableFile() throws {
        do {
            _ = try GatewayConfiguration.load(path: "/nonexistent/streamgate-\(UUID().uuidString).json")
            Issue.record("load must fail")
        } catch {
            #expect(error.message.contains("cannot read"))
            #expect(error.description.contains("/nonexistent/"))
        }
    }
}
