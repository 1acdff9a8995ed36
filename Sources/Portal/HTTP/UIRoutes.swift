import CStreamgateAssets
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web UI: `/` (the page), `/ui/app.js`, `/ui/style.css`, and the
/// JavaScript SDK at `/sdk/streamgate.js` for the test console. The files
/// are embedded in the binary; with `ui_directory` set they are read from
/// disk on every request instead, so the UI can be worked on without a rebuild.
struct UIRoutes: Sendable {
    let directory: String?

    static let files: [String: String] = [
        "index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
        "style.css": "text/css; charset=utf-8",
    ]

    func page(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        try file("index.html")
    }

    func asset(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        try file(try context.parameters.require("file"))
    }

    /// `GET /api/v1/openapi.json`: the REST API's OpenAPI 3 document (docs/portal-openapi.json).
    func openAPI(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        var length = 0
        let bytes = streamgate_asset_portal("openapi.json", &length)!
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-cache"],
                        body: .init(byteBuffer: ByteBuffer(bytes: UnsafeRawBufferPointer(start: bytes, count: length))))
    }

    func sdk(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        var length = 0
        let bytes = streamgate_asset_sdk_js(&length)!
        return Self.response(Data(bytes: bytes, count: length), type: "text/javascript; charset=utf-8")
    }

    private func file(_ name: String) throws -> Response {
        guard let type = Self.files[name] else { throw PortalError.notFound("no file '\(name)'") }
        if let directory {
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else {
                throw PortalError.notFound("'\(name)' is not in ui_directory \(directory)")
            }
            return Self.response(data, type: type)
        }
        var length = 0
        guard let bytes = streamgate_asset_portal(name, &length) else { throw PortalError.notFound("no file '\(name)'") }
        return Self.response(Data(bytes: bytes, count: length), type: type)
    }

    /// No caching (the page and the API change together), and a strict
    /// content security policy: the page runs its own module only, talks to
    /// its own origin and to the gateways' WebSockets.
    private static func response(_ data: Data, type: String) -> Response {
        Response(status: .ok, headers: [
            .contentType: type, .cacheControl: "no-cache",
            .contentSecurityPolicy: "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
