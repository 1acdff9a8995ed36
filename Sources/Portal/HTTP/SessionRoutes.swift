import Foundation
import Hummingbird
import StreamgatePluginAPI
import Synchronization

/// Logging in and out, and managing portal users (admins only).
struct SessionRoutes: Sendable {
    let admins: AdminStore
    let sessionSeconds: Int
    let throttle = LoginThrottle()
    let scrypts = Admission(limit: 2)

    /// `POST /api/v1/login` `{"username", "password"}` → `{"token", "username", "role", "expires_at"}`.
    func login(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        let body = try await JSONBody.object(request)
        let username: String, password: String
        do throws(ConfigurationError) {
            username = try body.requiredString("username")
            password = try body.requiredString("password")
            try body.finish()
        } catch { throw PortalError.invalid(error) }
        // Checked before any scrypt runs: a name no user can have costs nothing.
        guard !username.isEmpty, username.utf8.count <= 64, password.utf8.count <= 1024 else {
            throw PortalError(.unauthorized, code: "bad_credentials", "unknown user or wrong password")
        }
        if let wait = throttle.refusal(for: username) {
            var error = PortalError(.tooManyRequests, code: "rate_limited", "too many failed logins for '\(username)': try again in \(wait) s")
            error.headers[.retryAfter] = String(wait)
            throw error
        }
        // scrypt costs 128 MiB and a few hundred ms: at most two at a time, the rest are told to come back.
        guard scrypts.enter() else {
            var error = PortalError(.serviceUnavailable, code: "busy", "too many logins at once: try again in a second")
            error.headers[.retryAfter] = "1"
            throw error
        }
        defer { scrypts.leave() }
        guard let session = try await admins.login(username: username, password: password, sessionSeconds: sessionSeconds) else {
            throttle.failed(username)
            throw PortalError(.unauthorized, code: "bad_credentials", "unknown user or wrong password")
        }
        throttle.succeeded(username)
        return JSONBody.response(.object([
            "token": .string(session.token), "username": .string(session.user.username),
            "role": .string(session.user.role.rawValue), "expires_at": .number(session.expiresAt),
        ]))
    }

    /// `POST /api/v1/logout`: ends the session presented.
    func logout(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        if let token = request.bearerToken { try await admins.logout(session: token) }
        return Response(status: .noContent)
    }

    /// `GET /api/v1/me`.
    func me(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        let user = try context.require(.viewer)
        return JSONBody.response(.object(["username": .string(user.username), "role": .string(user.role.rawValue)]))
    }

    /// `GET /api/v1/users` (admin).
    func list(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let users = try await admins.list()
        return JSONBody.response(.object(["users": .array(users.map {
            .object(["username": .string($0.username), "role": .string($0.role.rawValue)])
        })]))
    }

    /// `POST /api/v1/users` `{"username", "password", "role"}` (admin).
    func create(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        _ = try context.require(.admin)
        let body = try await JSONBody.object(request)
        let username: String, password: String, role: PortalRole
        do throws(ConfigurationError) {
            username = try body.requiredString("username", expected: "1 to 64 of a-z, 0-9, '.', '_', '-'")
            guard !username.isEmpty, username.utf8.count <= 64,
                  username.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || ".-_".contains($0)) })
            else { throw ConfigurationError(key: "username", value: "\"\(username)\"", expected: "1 to 64 of a-z, 0-9, '.', '_', '-'") }
            password = try body.requiredString("password", expected: "at least 12 characters")
            guard password.count >= 12 else { throw ConfigurationError(key: "password", value: nil, expected: "at least 12 characters") }
            let roleName = try body.string("role", default: "viewer")
            guard let parsed = PortalRole(rawValue: roleName) else {
                throw ConfigurationError(key: "role", value: "\"\(roleName)\"", expected: "\"admin\" or \"viewer\"")
            }
            role = parsed
            try body.finish()
        } catch { throw PortalError.invalid(error) }
        guard try await admins.create(username: username, password: password, role: role) else {
            throw PortalError.conflict("a user named '\(username)' exists", field: "username")
        }
        return JSONBody.response(.object(["username": .string(username), "role": .string(role.rawValue)]), status: .created)
    }

    /// `DELETE /api/v1/users/{username}` (admin; not oneself).
    func delete(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        let user = try context.require(.admin)
        let username = try context.parameters.require("username")
        guard username != user.username else { throw PortalError.conflict("you cannot delete yourself", field: "username") }
        guard try await admins.delete(username: username) else { throw PortalError.notFound("no user named '\(username)'") }
        return Response(status: .noContent)
    }
}

/// Slows password guessing: after 5 failures for a name within 5 minutes,
/// that name is refused for the rest of the window.
final class LoginThrottle: Sendable {
    private let failures = Mutex<[String: (count: Int, since: Date)]>([:])
    static let window: TimeInterval = 300
    static let allowed = 5

    /// Seconds to wait, or nil when a try is allowed.
    func refusal(for username: String) -> Int? {
        failures.withLock { table in
            guard let entry = table[username] else { return nil }
            let age = Date().timeIntervalSince(entry.since)
            if age > Self.window { table[username] = nil; return nil }
            return entry.count >= Self.allowed ? Int((Self.window - age).rounded(.up)) : nil
        }
    }

    func failed(_ username: String) {
        failures.withLock { table in
            if table.count > 10_000 {
                // Forget windows that are over, never the ones still counting.
                let now = Date()
                table = table.filter { now.timeIntervalSince($0.value.since) <= Self.window }
                if table.count > 10_000 { return }  // a flood of names: refuse to grow, keep who is throttled
            }
            let entry = table[username] ?? (0, Date())
            table[username] = (entry.count + 1, entry.since)
        }
    }

    func succeeded(_ username: String) { failures.withLock { $0[username] = nil } }
}

/// At most `limit` holders at once; the others are refused, not queued.
final class Admission: Sendable {
    private let held = Mutex<Int>(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func enter() -> Bool {
        held.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func leave() { held.withLock { $0 -= 1 } }
}
