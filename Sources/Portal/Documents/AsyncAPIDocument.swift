import Foundation
import StreamgatePluginAPI

/// An API's AsyncAPI 3.0 document, generated on demand from its definition:
/// the gateways as `ws` servers behind a bearer JWT, one channel per
/// endpoint (its path template as the address, its parameters described),
/// a `receive` operation for subscribe and a `send` operation for publish,
/// and the message: the endpoint's JSON Schema when it has one, with the
/// delivery frame that carries it described (`x-streamgate-delivery`).
enum AsyncAPIDocument {
    static func make(_ api: ApiDefinition, gatewayURLs: [String]) -> JSONValue {
        var servers: [String: JSONValue] = [:]
        for (i, url) in gatewayURLs.enumerated() {
            servers["node-\(i + 1)"] = server(url)
        }
        var channels: [String: JSONValue] = [:]
        var operations: [String: JSONValue] = [:]
        var messages: [String: JSONValue] = [:]
        var used: Set<String> = []
        for endpoint in api.endpoints {
            let id = uniqueID(for: endpoint.path, used: &used)
            messages[id] = message(endpoint)
            var parameters: [String: JSONValue] = [:]
            for name in endpoint.path.parameters {
                parameters[name] = .object(["description": .string(
                    "One path segment; the record's key is \"\(endpoint.key.text)\" with {\(name)} replaced by it.")])
            }
            var channel: [String: JSONValue] = [
                "address": .string(endpoint.path.text),
                "title": .string(endpoint.path.text),
                "description": .string(endpoint.description.isEmpty
                    ? "Kafka topic `\(endpoint.topic)`, key `\(endpoint.key.text)`."
                    : endpoint.description + "\n\nKafka topic `\(endpoint.topic)`, key `\(endpoint.key.text)`."),
                "messages": .object(["delivery": .object(["$ref": .string("#/components/messages/\(id)")])]),
                "bindings": .object(["ws": .object([
                    "method": "GET",
                    "query": .object(["type": "object", "properties": .object([
                        "access_token": .object(["type": "string", "description": "The token, for clients that cannot set headers (browsers)."]),
                    ])]),
                    "bindingVersion": "0.1.0",
                ])]),
                "x-kafka": .object(["topic": .string(endpoint.topic), "key": .string(endpoint.key.text)]),
            ]
            if !parameters.isEmpty { channel["parameters"] = .object(parameters) }
            channels[id] = .object(channel)
            let reference: JSONValue = .object(["$ref": .string("#/channels/\(id)")])
            let messageReference: JSONValue = .array([.object(["$ref": .string("#/channels/\(id)/messages/delivery")])])
            if endpoint.actions.contains(.subscribe) {
                operations["receive-\(id)"] = .object([
                    "action": "receive", "channel": reference, "messages": messageReference,
                    "summary": .string("Subscribe to \(endpoint.path.text): every record produced to it, in order; resumable from (epoch, seq)."),
                ])
            }
            if endpoint.actions.contains(.publish) {
                operations["send-\(id)"] = .object([
                    "action": "send", "channel": reference, "messages": messageReference,
                    "summary": .string("Publish to \(endpoint.path.text): produced to Kafka; the reply carries the partition and offset."),
                ])
            }
        }
        var info: [String: JSONValue] = ["title": .string(api.name), "version": .string(api.version)]
        if !api.description.isEmpty { info["description"] = .string(api.description) }
        if !api.owner.isEmpty { info["contact"] = .object(["name": .string(api.owner)]) }
        return .object([
            "asyncapi": "3.0.0",
            "info": .object(info),
            "servers": .object(servers),
            "defaultContentType": "application/octet-stream",
            "channels": .object(channels),
            "operations": .object(operations),
            "components": .object([
                "messages": .object(messages),
                "securitySchemes": .object(["bearer": .object([
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "A token minted by the portal: `Authorization: Bearer ...`, the `access_token` query parameter, or an in-band `auth` request.",
                ])]),
            ]),
        ])
    }

    /// `ws://host:port/path` as an AsyncAPI server.
    static func server(_ url: String) -> JSONValue {
        let secure = url.hasPrefix("wss://")
        let rest = url.dropFirst(secure ? 6 : 5)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var object: [String: JSONValue] = [
            "host": .string(String(rest[..<slash])), "protocol": .string(secure ? "wss" : "ws"),
            "description": "A Streamgate gateway node; clients fail over between nodes and resume exactly.",
            "security": .array([.object(["$ref": "#/components/securitySchemes/bearer"])]),
        ]
        if slash < rest.endIndex { object["pathname"] = .string(String(rest[slash...])) }
        return .object(object)
    }

    private static func message(_ endpoint: ApiEndpoint) -> JSONValue {
        var message: [String: JSONValue] = [
            "name": "delivery",
            "title": .string("A record of \(endpoint.path.text)"),
            "summary": "The value of a Kafka record, delivered in a binary WebSocket frame.",
            "description": """
                Each record arrives in one binary frame (docs/protocol.md): version (1 byte, 1), flags (1 byte), \
                endpoint length (2 bytes), epoch length (2 bytes), sequence (8 bytes, the Kafka offset), timestamp \
                (8 bytes, ms), the endpoint, the epoch, then this payload. A client that reconnects sends the last \
                (epoch, seq) it saw and receives every message after it, in order, once.
                """,
            "x-streamgate-delivery": .object([
                "frame": "binary", "position": .array(["epoch", "seq"]),
                "fields": .array(["version", "flags", "endpoint", "epoch", "seq", "timestamp", "payload"]),
            ]),
        ]
        if let schema = endpoint.schema {
            message["contentType"] = "application/json"
            message["payload"] = schema
        } else {
            message["contentType"] = "application/octet-stream"
            message["payload"] = .object(["type": "string", "format": "binary", "description": "The record's value, as produced."])
        }
        return .object(message)
    }

    /// A channel id from the path (`/scores/live/{sport}` → `scores-live-sport`).
    private static func uniqueID(for path: EndpointTemplate, used: inout Set<String>) -> String {
        let base = path.segments.map { segment -> String in
            switch segment {
            case .literal(let text): text
            case .parameter(let name): name
            }
        }.joined(separator: "-").map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? String($0) : "_" }.joined()
        var id = base.isEmpty ? "root" : base
        var n = 2
        while !used.insert(id).inserted {
            id = "\(base)-\(n)"
            n += 1
        }
        return id
    }
}
