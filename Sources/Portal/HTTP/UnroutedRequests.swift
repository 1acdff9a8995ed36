import HTTPTypes
import Hummingbird
import Synchronization

/// What a request that no route takes gets: 405 with an `Allow` header when
/// its path exists under other methods (RFC 9110 §15.5.6: a client learns
/// what it may do there), else a JSON 404 like every other portal error.
///
/// Hummingbird answers both with a bare 404. This middleware sits at the
/// router's root, where it also wraps the "not found" responder, and learns
/// the routes once the router is built (`learn(_:)`).
final class UnroutedRequests: RouterMiddleware, Sendable {
    typealias Context = PortalRequestContext

    private let routes = Mutex<[(path: RouterPath, methods: Set<HTTPRequest.Method>)]>([])

    /// Records every route of the finished router (call before serving).
    func learn(_ descriptions: [Router<Context>.RouteDescription]) {
        var byPath: [String: (path: RouterPath, methods: Set<HTTPRequest.Method>)] = [:]
        for route in descriptions {
            byPath[route.path.description, default: (route.path, [])].methods.insert(route.method)
        }
        routes.withLock { $0 = Array(byPath.values) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            // Thrown by the router itself (handlers throw PortalError).
            let allowed = methods(for: request.uri.path)
            guard !allowed.isEmpty else {
                throw PortalError.notFound("no resource at \(request.uri.path)")
            }
            let list = allowed.map(\.rawValue).sorted().joined(separator: ", ")
            var refusal = PortalError(.methodNotAllowed, code: "method_not_allowed",
                                      "\(request.method.rawValue) is not allowed on \(request.uri.path); allowed: \(list)")
            refusal.headers[.allow] = list
            throw refusal
        }
    }

    /// The methods of the route the router resolves `path` to: of the
    /// routes matching it, the one with a literal segment first where the
    /// others capture (`/keys/rotate` over `/keys/:id`), as the router's trie
    /// prefers.
    private func methods(for path: String) -> Set<HTTPRequest.Method> {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        var best: (literals: [Bool], methods: Set<HTTPRequest.Method>)?
        for route in routes.withLock({ $0 }) {
            let elements = route.path.components
            guard elements.count == segments.count,
                  zip(elements, segments).allSatisfy({ element, segment in element ~= segment }) else { continue }
            let literals = zip(elements, segments).map { element, segment in element == segment }
            if best.map({ Self.isMoreSpecific(literals, than: $0.literals) }) ?? true {
                best = (literals, route.methods)
            }
        }
        return best?.methods ?? []
    }

    /// True when, at the first segment where they differ, `a` is literal.
    private static func isMoreSpecific(_ a: [Bool], than b: [Bool]) -> Bool {
        for (x, y) in zip(a, b) where x != y { return x }
        return false
    }
}
