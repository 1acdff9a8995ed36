import CStreamgateAssets
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The web UI: `/` (the page), `/ui/style.css`, `/ui/app.js` and the ES
/// modules it imports (`/ui/<module>.js`), and the JavaScript SDK at
/// `/sdk/streamgate.js` for the test console. The files are embedded in the
/// binary; with `ui_directory` set they are read from disk on every request
/// instead, so the UI can be worked on without a rebuild.
struct UIRoutes: Sendable {
    let directory: String?

    /// The UI's ES modules (Sources/Portal/UI, flat: `/ui/:file` is one path
    /// segment): app.js, the entry point, and every module it imports. Each is
    /// embedded by Sources/CStreamgateAssets/assets.c too.
    private static let modules = [
        "app.js", "state.js", "nav.js", "rest.js", "dom.js", "format.js", "forms.js", "widgets.js", "router.js",
        "topbar.js", "view-login.js", "view-api-list.js", "view-api-form.js", "endpoint-params.js", "view-api.js",
        "view-tokens.js", "token-mint.js", "token-table.js", "view-keys.js", "view-users.js", "gateway-settings.js",
        "view-console.js", "console-connection.js", "console-panels.js", "view-snippets.js", "snippet-text.js",
    ]

    /// The files served, by name, with their content types.
    static let files: [String: String] = [
        "index.html": "text/html; charset=utf-8", "style.css": "text/css; charset=utf-8",
    ].merging(modules.map { ($0, "text/javascript; charset=utf-8") }) { first, _ in first }

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
    /// content security policy: the page runs its own modules only, talks to
    /// its own origin and to the gateways' WebSockets.
    private static func response(_ data: Data, type: String) -> Response {
        Response(status: .ok, headers: [
            .contentType: type, .cacheControl: "no-cache",
            .contentSecurityPolicy: "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        ], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
