import Foundation
import Hummingbird
import StreamgatePluginAPI

/// Minting, listing and revoking tokens; listing and rotating signing keys.
struct TokenRoutes: Sendable {
    let apiRoutes: ApiRoutes
    let minter: TokenMinter
    let tokens: TokenStore
    let keys: KeyStore
    let maxTokenSeconds: Int

    /// `POST /api/v1/apis/{name}/tokens` (admin) → `{"token", ...the record}`; the token is shown only here.
    func mint(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        let user = try context.require(.admin)
        let api = try await apiRoutes.named(context)
        let mintRequest: MintRequest
        let body = try await JSONBody.read(request)
        do throws(ConfigurationError) {
            mintRequest = try MintRequest(json: body, api: api, maxSeconds: maxTokenSeconds)
        } catch {
            throw PortalError.invalid(error)
        }
        let minted = try await minter.mint(mintRequest, api: api.name, by: user.username)
        guard case .object(var object) = minted.record.json else { throw PortalError.internal("token record is not an object") }
        object["token"] = .string(minted.token)
        return JSONBody.response(.object(object), status: .created, headers: [.location: "/api/v1/tokens/\(minted.record.id)"])
    }

    /// `GET /api/v1/tokens?api=&q=&active=true` (viewer).
    func list(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.viewer)
        let query = request.uri.queryParameters
        if let active = query["active"], active != "true", active != "false" {
            throw PortalError.badRequest("active is \"true\" or \"false\"", field: "active")
        }
        let records = try await tokens.list(api: query["api"].map(String.init), search: query["q"].map(String.init),
                                            includeExpired: query["active"] != "true")
        return JSONBody.response(.object(["tokens": .array(records.map(\.json))]))
    }

    /// `GET /api/v1/tokens/{id}` (viewer).
    func get(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.viewer)
        let id = try context.parameters.require("id")
        guard let record = try await tokens.get(id) else { throw PortalError.notFound("no token with id '\(id)'") }
        return JSONBody.response(record.json)
    }

    /// `DELETE /api/v1/tokens/{id}` (admin): revokes. Gateways end the
    /// token's live subscriptions at their next poll.
    func revoke(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let id = try context.parameters.require("id")
        switch try await tokens.revoke(id) {
        case .notFound: throw PortalError.notFound("no token with id '\(id)'")
        case .revoked, .alreadyRevoked: return Response(status: .noContent)
        }
    }

    /// `GET /api/v1/keys` (viewer): the signing keys, public facts only.
    func listKeys(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.viewer)
        return JSONBody.response(.object(["keys": .array(try await keys.list())]))
    }

    /// `DELETE /api/v1/keys/{id}` (admin): withdraws a key that leaked (see
    /// `KeyStore.withdraw`); rotation, not this, is the routine change.
    func withdrawKey(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let id = try context.parameters.require("id")
        switch try await keys.withdraw(id) {
        case .notFound: throw PortalError.notFound("no signing key with id '\(id)'")
        case .alreadyWithdrawn: throw PortalError.conflict("the key '\(id)' was already withdrawn", field: "id")
        case .withdrawn(let revoked, let next):
            return JSONBody.response(.object([
                "withdrawn": .string(id), "revoked_tokens": .number(Double(revoked)),
                "signing_key": next.map(JSONValue.string) ?? .null,
            ]))
        }
    }

    /// `POST /api/v1/keys/rotate` (admin): a new key signs from now on.
    func rotateKey(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let id = try await keys.rotate()
        return JSONBody.response(.object(["signing_key": .string(id)]), status: .created)
    }
}
