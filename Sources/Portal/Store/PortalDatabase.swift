import Foundation
import GRDB

/// The portal's state: one SQLite file through GRDB, its schema kept by
/// migrations (each runs once, in order, so an old file is brought up to
/// date at start), and a revision that moves on with every change gateways
/// must see (APIs, revocations, signing keys).
///
/// The file holds the signing keys' private halves: it is created readable
/// by its owner only.
public final class PortalDatabase: Sendable {
    let queue: DatabaseQueue

    /// A file database (created if missing), or an in-memory one for ":memory:".
    public init(path: String) throws {
        if path == ":memory:" {
            queue = try DatabaseQueue()
        } else {
            let existed = FileManager.default.fileExists(atPath: path)
            var configuration = Configuration()
            configuration.foreignKeysEnabled = true
            queue = try DatabaseQueue(path: path, configuration: configuration)
            if !existed { chmod(path, 0o600) }
        }
        try Self.migrator.migrate(queue)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1-apis-tokens-keys-admins") { db in
            try db.execute(sql: """
                CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT INTO meta (name, value) VALUES ('revision', 1);
                CREATE TABLE api (
                    name TEXT PRIMARY KEY,
                    definition TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL);
                CREATE TABLE signing_key (
                    id TEXT PRIMARY KEY,
                    algorithm TEXT NOT NULL,
                    private_pem TEXT NOT NULL,
                    public_jwk TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    retired_at REAL,
                    last_expiry REAL NOT NULL DEFAULT 0);
                CREATE TABLE token (
                    id TEXT PRIMARY KEY,
                    api TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    subscribe TEXT NOT NULL,
                    publish TEXT NOT NULL,
                    claims TEXT NOT NULL,
                    key_id TEXT NOT NULL REFERENCES signing_key(id),
                    issued_at REAL NOT NULL,
                    expires_at REAL NOT NULL,
                    revoked_at REAL,
                    created_by TEXT NOT NULL,
                    description TEXT NOT NULL DEFAULT '');
                CREATE INDEX token_api ON token(api);
                CREATE INDEX token_subject ON token(subject);
                CREATE TABLE admin (
                    username TEXT PRIMARY KEY,
                    role TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    created_at REAL NOT NULL);
                CREATE TABLE session (
                    token_hash TEXT PRIMARY KEY,
                    username TEXT NOT NULL REFERENCES admin(username) ON DELETE CASCADE,
                    expires_at REAL NOT NULL);
                """)
        }
        migrator.registerMigration("2-key-withdrawal") { db in
            // A withdrawn key (compromised) leaves the JWKS at once and its
            // private half is erased, unlike a retired one.
            try db.execute(sql: "ALTER TABLE signing_key ADD COLUMN withdrawn_at REAL")
        }
        return migrator
    }

    /// The revision gateways compare with the one they hold.
    public func revision() async throws -> Int64 {
        try await queue.read { db in try Self.revision(db) }
    }

    static func revision(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'revision'") ?? 0
    }

    /// Called inside every write that gateways must see.
    static func bumpRevision(_ db: Database) throws {
        try db.execute(sql: "UPDATE meta SET value = value + 1 WHERE name = 'revision'")
    }
}
