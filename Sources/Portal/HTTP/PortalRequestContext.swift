import HTTPTypes
import Hummingbird

/// Each request's context: who is logged in, once `SessionAuthenticator` has looked.
public struct PortalRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var user: PortalUser?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        user = nil
    }

    /// The user, who must hold at least `role`.
    func require(_ role: PortalRole) throws -> PortalUser {
        guard let user else { throw PortalError.unauthenticated }
        guard user.role >= role else { throw PortalError.forbidden("this needs the '\(role.rawValue)' role; '\(user.username)' is '\(user.role.rawValue)'") }
        return user
    }
}

/// Reads `Authorization: Bearer <session token>` and puts the user in the
/// context; refuses requests without a valid session. Routes behind it
/// then only check the role.
struct SessionAuthenticator: RouterMiddleware {
    typealias Context = PortalRequestContext
    let admins: AdminStore

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = request.bearerToken, let user = try await admins.user(session: token) else {
            throw PortalError.unauthenticated
        }
        var context = context
        context.user = user
        return try await next(request, context)
    }
}

extension Request {
    /// The token of an `Authorization: Bearer` header, if any.
    var bearerToken: String? {
        guard let value = headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
