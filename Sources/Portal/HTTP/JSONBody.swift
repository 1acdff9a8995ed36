import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StreamgatePluginAPI

/// JSON in and out of the REST API as `JSONValue`: request bodies are read
/// with `ConfigSection`, so errors name the field the same way the gateway's
/// configuration errors do.
enum JSONBody {
    /// Largest request body read (an API with many endpoints and schemas fits).
    static let maxBytes = 1 << 20

    static func read(_ request: Request) async throws -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBytes)
        } catch {
            throw PortalError(.contentTooLarge, code: "too_large", "the request body is larger than \(maxBytes) bytes")
        }
        guard buffer.readableBytes > 0 else { throw PortalError.badRequest("the request has no JSON body") }
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(buffer.readableBytesView))
        } catch {
            throw PortalError.badRequest("the body is not valid JSON")
        }
    }

    /// The body, which must be a JSON object, as a section read key by key.
    static func object(_ request: Request) async throws -> ConfigSection {
        let value = try await read(request)
        do throws(ConfigurationError) {
            return try ConfigSection(path: "", value: value)
        } catch {
            throw PortalError.badRequest("the body must be a JSON object, got \(value.typeName)")
        }
    }

    static func response(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        let data = (try? JSONEncoder.sorted.encode(value)) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
