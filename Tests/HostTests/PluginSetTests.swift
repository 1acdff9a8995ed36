import Foundation
import StreamgatePluginAPI
import StreamgatePlugins
import Testing

@testable import streamgate

/// Builds the plugins of a configuration whose `source.options` is `options`.
func pluginError(sourcePlugin: String = "kafka", options: String, extra: String = "") throws -> ConfigurationErrorInFile? {
    let json = #"{"# + extra + #""source":{"plugin":"\#(sourcePlugin)","options":\#(options)}}"#
    let configuration = try GatewayConfiguration.parse(Data(json.utf8), file: "plugins.json")
    do {
        _ = try PluginSet(configuration: configuration, registry: .builtin())
        return nil
    } catch {
        return error
    }
}

@Suite("PluginSet")
struct PluginSetTests {
    static let good = #"{"brokers":"127.0.0.1:9092","topics":["scores","news.v1"]}"#

    @Test func builtinRegistryHoldsTheBuiltins() {
        let registry = PluginRegistry.builtin()
        #expect(registry.sources.keys.sorted() == ["generator", "kafka"])
        #expect(registry.mappers.keys.sorted() == ["portal", "topic-key"])
        #expect(registry.authorizers.keys.sorted() == ["allow-all", "jwt", "portal", "static-tokens", "webhook"])
    }

    @Test func validConfigurationBuildsEveryPlugin() throws {
        let json = #"{"source":{"plugin":"kafka","options":{"brokers":"127.0.0.1:9092","topics":["scores","news.v1"],"start":"earliest","properties":{"client.id":"sg-test","fetch.wait.max.ms":"10"}}}}"#
        let configuration = try GatewayConfiguration.parse(Data(json.utf8), file: "ok.json")
        let plugins = try PluginSet(configuration: configuration, registry: .builtin())
        #expect(plugins.source.topics == ["scores", "news.v1"])
        let kafka = try #require(plugins.source as? KafkaSource)
        #expect(kafka.brokers == "127.0.0.1:9092")
        #expect(plugins.mapper is TopicKeyMapper)
        #expect(plugins.authorizers.authorizers.count == 1 && plugins.authorizers.authorizers[0].authorizer is AllowAllAuthorizer)
    }

    @Test func unknownSourcePlugin() throws {
        let error = try #require(try pluginError(sourcePlugin: "kafak", options: Self.good))
        #expect(error.message.hasPrefix("source.plugin:"), "\(error.message)")
        #expect(error.message.contains("\"kafak\""))
        #expect(error.message.contains("\"kafka\""))
        #expect(error.description.hasPrefix("plugins.json: "))
    }

    @Test func unknownMapperAndAuthorizerPlugins() throws {
        let mapper = try #require(try pluginError(options: Self.good, extra: #""mapping":{"plugin":"nope"},"#))
        #expect(mapper.message.hasPrefix("mapping.plugin:"))
        #expect(mapper.message.contains("\"topic-key\""))
        let auth = try #require(try pluginError(options: Self.good, extra: #""authorization":{"plugin":"nope"},"#))
        #expect(auth.message.hasPrefix("authorization.plugin:"))
        #expect(auth.message.contains("\"allow-all\""))
    }

    @Test func unknownOptionOfBuiltinMapper() throws {
        let error = try #require(try pluginError(
            options: Self.good, extra: #""mapping":{"plugin":"topic-key","options":{"separator":"/"}},"#))
        #expect(error.message.hasPrefix("mapping.options.separator:"), "\(error.message)")
    }

    @Test(arguments: [
        (#"{"topics":["t"]}"#, "source.options.brokers"),
        (#"{"brokers":9092,"topics":["t"]}"#, "source.options.brokers"),
        (#"{"brokers":"b:9092"}"#, "source.options.topics"),
        (#"{"brokers":"b:9092","topics":[]}"#, "source.options.topics"),
        (#"{"brokers":"b:9092","topics":"t"}"#, "source.options.topics"),
        (#"{"brokers":"b:9092","topics":["ok",3]}"#, "source.options.topics[1]"),
        (#"{"brokers":"b:9092","topics":["bad topic"]}"#, "source.options.topics[0]"),
        (#"{"brokers":"b:9092","topics":["ok",".."]}"#, "source.options.topics[1]"),
        (#"{"brokers":"b:9092","topics":["t"],"start":"beginning"}"#, "source.options.start"),
        (#"{"brokers":"b:9092","topics":["t"],"properties":{"no.such.property":"1"}}"#,
         "source.options.properties.no.such.property"),
        (#"{"brokers":"b:9092","topics":["t"],"properties":{"fetch.wait.max.ms":"soon"}}"#,
         "source.options.properties.fetch.wait.max.ms"),
        (#"{"brokers":"b:9092","topics":["t"],"properties":{"client.id":1}}"#, "source.options.properties.client.id"),
        (#"{"brokers":"b:9092","topics":["t"],"group":"g"}"#, "source.options.group"),
    ])
    func kafkaOptionErrorNamesItsKey(options: String, key: String) throws {
        let error = try #require(try pluginError(options: options))
        #expect(error.message.hasPrefix(key + ":"), "\(error.message)")
        #expect(error.description.contains("plugins.json"))
    }

    @Test func invalidTopicErrorShowsTheName() throws {
        let error = try #require(try pluginError(options: #"{"brokers":"b:9092","topics":["bad topic"]}"#))
        #expect(error.message.contains("\"bad topic\""))
    }

    @Test func unknownPropertyErrorShowsValue() throws {
        let error = try #require(try pluginError(
            options: #"{"brokers":"b:9092","topics":["t"],"properties":{"no.such.property":"1"}}"#))
        #expect(error.message.contains("\"1\""))
        #expect(error.message.contains("librdkafka"))
    }

    @Test func unknownOptionListsKnownKeys() throws {
        let error = try #require(try pluginError(options: #"{"brokers":"b:9092","topics":["t"],"topic":"x"}"#))
        #expect(error.message.hasPrefix("source.options.topic:"))
        #expect(error.message.contains("brokers"))
        #expect(error.message.contains("topics"))
    }
}
