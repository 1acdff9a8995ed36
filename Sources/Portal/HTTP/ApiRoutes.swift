import Foundation
import Hummingbird
import NIOCore
import StreamgatePluginAPI

/// `/api/v1/apis` and `/api/v1/apis/{name}`: the APIs as data.
struct ApiRoutes: Sendable {
    let apis: ApiStore
    let topics: any TopicCatalog
    let gatewayURLs: [String]

    func list(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.viewer)
        return JSONBody.response(.object(["apis": .array(try await apis.list().map(\.json))]))
    }

    func get(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.viewer)
        return JSONBody.response(try await named(context).json)
    }

    /// `POST /api/v1/apis`: creates; 409 when the name exists.
    func create(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let api = try await definition(request, name: nil)
        _ = try await apis.save(api, replace: false, knownTopics: try await topics.topics())
        return JSONBody.response(api.json, status: .created, headers: [.location: "/api/v1/apis/\(api.name)"])
    }

    /// `PUT /api/v1/apis/{name}`: creates or replaces.
    func replace(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let name = try context.parameters.require("name")
        let api = try await definition(request, name: name)
        let outcome = try await apis.save(api, replace: true, knownTopics: try await topics.topics())
        return JSONBody.response(api.json, status: outcome == .created ? .created : .ok)
    }

    func delete(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let name = try context.parameters.require("name")
        guard try await apis.delete(name) else { throw PortalError.notFound("no API named '\(name)'") }
        return Response(status: .noContent)
    }

    /// `GET /api/v1/apis/{name}/asyncapi.json` (viewer).
    func asyncAPIJSON(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.viewer)
        let api = try await named(context)
        return JSONBody.response(AsyncAPIDocument.make(api, gatewayURLs: gatewayURLs),
                                 headers: [.contentDisposition: "inline; filename=\"\(api.name)-asyncapi.json\""])
    }

    /// `GET /api/v1/apis/{name}/asyncapi.yaml` (viewer): the same document as YAML.
    func asyncAPIYAML(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.viewer)
        let api = try await named(context)
        let text = YAMLWriter.write(AsyncAPIDocument.make(api, gatewayURLs: gatewayURLs))
        return Response(status: .ok, headers: [
            .contentType: "application/yaml; charset=utf-8", .cacheControl: "no-store",
            .contentDisposition: "inline; filename=\"\(api.name)-asyncapi.yaml\"",
        ], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func named(_ context: PortalRequestContext) async throws -> ApiDefinition {
        let name = try context.parameters.require("name")
        guard let api = try await apis.get(name) else { throw PortalError.notFound("no API named '\(name)'") }
        return api
    }

    private func definition(_ request: Request, name: String?) async throws -> ApiDefinition {
        let json = try await JSONBody.read(request)
        do throws(ConfigurationError) { return try ApiDefinition(json: json, name: name) } catch { throw PortalError.invalid(error) }
    }
}
