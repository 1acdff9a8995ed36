import Crypto
import Foundation
import GRDB
import StreamgatePluginAPI

/// What a portal user may do: `viewer` reads (APIs, their documents, the
/// token list); `admin` also changes APIs, mints and revokes tokens,
/// rotates keys and manages users.
public enum PortalRole: String, Sendable, Comparable {
    case viewer
    case admin

    public static func < (a: PortalRole, b: PortalRole) -> Bool { a == .viewer && b == .admin }
}

/// A logged-in portal user.
public struct PortalUser: Sendable, Equatable {
    public let username: String
    public let role: PortalRole
}

/// Portal users and their login sessions. A session is a random bearer
/// token the browser or script sends back; only its SHA-256 is stored, so a
/// copy of the database logs nobody in.
public struct AdminStore: Sendable {
    let database: PortalDatabase
    var passwordHash = PasswordHash()

    public init(database: PortalDatabase) { self.database = database }

    /// Creates the user; false when the name is taken.
    public func create(username: String, password: String, role: PortalRole) async throws -> Bool {
        let hash = try passwordHash.hash(password)
        return try await database.queue.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM admin WHERE username = ?", arguments: [username]) ?? false { return false }
            try db.execute(sql: "INSERT INTO admin (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [username, role.rawValue, hash, Date().timeIntervalSince1970])
            return true
        }
    }

    public func count() async throws -> Int {
        try await database.queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM admin") ?? 0 }
    }

    public func list() async throws -> [PortalUser] {
        try await database.queue.read { db in
            try Row.fetchAll(db, sql: "SELECT username, role FROM admin ORDER BY username").map {
                PortalUser(username: $0["username"], role: PortalRole(rawValue: $0["role"]) ?? .viewer)
            }
        }
    }

    public func delete(username: String) async throws -> Bool {
        try await database.queue.write { db in
            try db.execute(sql: "DELETE FROM admin WHERE username = ?", arguments: [username])
            return db.changesCount > 0
        }
    }

    /// A new session token when the password is right, else nil. An unknown
    /// user costs the same scrypt as a known one (no user enumeration by timing).
    public func login(username: String, password: String, sessionSeconds: Int) async throws -> (token: String, user: PortalUser, expiresAt: Double)? {
        let row = try await database.queue.read { db in
            try Row.fetchOne(db, sql: "SELECT role, password_hash FROM admin WHERE username = ?", arguments: [username])
        }
        let stored: String = row?["password_hash"] ?? Self.decoy
        guard PasswordHash.verify(password, against: stored), let row else { return nil }
        let user = PortalUser(username: username, role: PortalRole(rawValue: row["role"]) ?? .viewer)
        let token = "sgp_" + RandomToken.base64URL(bytes: 32)
        let expiresAt = Date().timeIntervalSince1970 + Double(sessionSeconds)
        try await database.queue.write { db in
            try db.execute(sql: "DELETE FROM session WHERE expires_at < ?", arguments: [Date().timeIntervalSince1970])
            try db.execute(sql: "INSERT INTO session (token_hash, username, expires_at) VALUES (?, ?, ?)",
                           arguments: [Self.digest(token), username, expiresAt])
        }
        return (token, user, expiresAt)
    }

    /// The user a session token belongs to, while it lasts.
    public func user(session token: String) async throws -> PortalUser? {
        try await database.queue.read { db in
            try Row.fetchOne(db, sql: """
                SELECT admin.username, admin.role FROM session JOIN admin ON admin.username = session.username
                WHERE session.token_hash = ? AND session.expires_at > ?
                """, arguments: [Self.digest(token), Date().timeIntervalSince1970]).map {
                PortalUser(username: $0["username"], role: PortalRole(rawValue: $0["role"]) ?? .viewer)
            }
        }
    }

    public func logout(session token: String) async throws {
        try await database.queue.write { db in
            try db.execute(sql: "DELETE FROM session WHERE token_hash = ?", arguments: [Self.digest(token)])
        }
    }

    static func digest(_ token: String) -> String {
        RandomToken.hexString(SHA256.hash(data: Data(token.utf8)))
    }

    /// A well-formed hash no password matches in practice, for unknown users.
    private static let decoy = (try? PasswordHash().hash(RandomToken.base64URL(bytes: 24))) ?? "scrypt$1$1$1$$"
}
