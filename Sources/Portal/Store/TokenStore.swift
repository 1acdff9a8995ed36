import Foundation
import GRDB
import StreamgatePluginAPI

/// Minted tokens, by id (the JWT's `jti`). The token text itself is never
/// stored: it is shown once, when minted. Revoking moves the revision, so
/// gateways learn of it at their next poll.
public struct TokenStore: Sendable {
    let database: PortalDatabase

    public init(database: PortalDatabase) { self.database = database }

    public struct Record: Sendable {
        public let id: String
        public let api: String
        public let subject: String
        public let subscribe: [String]
        public let publish: [String]
        public let claims: [String: String]
        public let keyID: String
        public let issuedAt: Double
        public let expiresAt: Double
        public var revokedAt: Double?
        public let createdBy: String
        public let description: String

        public var json: JSONValue {
            .object([
                "id": .string(id), "api": .string(api), "subject": .string(subject),
                "subscribe": .array(subscribe.map(JSONValue.string)), "publish": .array(publish.map(JSONValue.string)),
                "claims": .object(claims.mapValues(JSONValue.string)), "key_id": .string(keyID),
                "issued_at": .number(issuedAt), "expires_at": .number(expiresAt),
                "revoked_at": revokedAt.map(JSONValue.number) ?? .null, "created_by": .string(createdBy),
                "description": .string(description),
            ])
        }
    }

    func insert(_ record: Record, db: Database) throws {
        try db.execute(sql: """
            INSERT INTO token (id, api, subject, subscribe, publish, claims, key_id, issued_at, expires_at, created_by, description)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [record.id, record.api, record.subject, Self.text(record.subscribe), Self.text(record.publish),
                             Self.text(record.claims), record.keyID, record.issuedAt, record.expiresAt, record.createdBy,
                             record.description])
        try KeyStore.noteExpiry(db, keyID: record.keyID, expiry: record.expiresAt)
    }

    /// Tokens, newest first; `search` matches the id, subject or description.
    public func list(api: String? = nil, search: String? = nil, includeExpired: Bool = true, limit: Int = 500) async throws -> [Record] {
        try await database.queue.read { db in
            var sql = "SELECT * FROM token WHERE 1"
            var arguments: StatementArguments = []
            if let api {
                sql += " AND api = ?"
                arguments += [api]
            }
            if let search, !search.isEmpty {
                sql += " AND (id LIKE ? ESCAPE '\\' OR subject LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')"
                let like = "%" + search.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                    .replacingOccurrences(of: "_", with: "\\_") + "%"
                arguments += [like, like, like]
            }
            if !includeExpired {
                sql += " AND expires_at > ?"
                arguments += [Date().timeIntervalSince1970]
            }
            sql += " ORDER BY issued_at DESC, id LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.record)
        }
    }

    public func get(_ id: String) async throws -> Record? {
        try await database.queue.read { db in try Row.fetchOne(db, sql: "SELECT * FROM token WHERE id = ?", arguments: [id]).map(Self.record) }
    }

    public enum RevokeOutcome: Sendable, Equatable { case revoked, alreadyRevoked, notFound }

    public func revoke(_ id: String) async throws -> RevokeOutcome {
        try await database.queue.write { db in
            guard let revoked = try Row.fetchOne(db, sql: "SELECT revoked_at FROM token WHERE id = ?", arguments: [id]) else { return .notFound }
            if (revoked["revoked_at"] as Double?) != nil { return .alreadyRevoked }
            try db.execute(sql: "UPDATE token SET revoked_at = ? WHERE id = ?", arguments: [Date().timeIntervalSince1970, id])
            try PortalDatabase.bumpRevision(db)
            return .revoked
        }
    }

    /// How long after its expiry a revoked id is still listed: gateways
    /// accept a token until `exp` plus their leeway (at most an hour), and
    /// clocks differ; a revocation must outlast both.
    static let revokedGraceSeconds: Double = 3600 + 300

    /// Revoked tokens a gateway could still accept.
    static func revokedIDs(_ db: Database, now: Double) throws -> [String] {
        try String.fetchAll(db, sql: "SELECT id FROM token WHERE revoked_at IS NOT NULL AND expires_at > ? ORDER BY id",
                            arguments: [now - revokedGraceSeconds])
    }

    /// Revokes every token `keyID` signed that gateways may still accept
    /// (inside the transaction that withdraws the key); returns how many.
    static func revokeLive(signedBy keyID: String, _ db: Database, now: Double) throws -> Int {
        try db.execute(sql: "UPDATE token SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL AND expires_at > ?",
                       arguments: [now, keyID, now - revokedGraceSeconds])
        return db.changesCount
    }

    /// Revokes every live token of an API (inside the transaction that deletes it):
    /// a new API of the same name must not inherit them.
    static func revokeAll(api: String, _ db: Database) throws {
        try db.execute(sql: "UPDATE token SET revoked_at = ? WHERE api = ? AND revoked_at IS NULL",
                       arguments: [Date().timeIntervalSince1970, api])
    }

    private static func record(_ row: Row) throws -> Record {
        Record(id: row["id"], api: row["api"], subject: row["subject"], subscribe: try decode(row["subscribe"]),
               publish: try decode(row["publish"]), claims: try decode(row["claims"]), keyID: row["key_id"],
               issuedAt: row["issued_at"], expiresAt: row["expires_at"], revokedAt: row["revoked_at"],
               createdBy: row["created_by"], description: row["description"])
    }

    private static func text(_ value: some Encodable) -> String {
        String(decoding: (try? JSONEncoder.sorted.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    private static func decode<T: Decodable>(_ text: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}
