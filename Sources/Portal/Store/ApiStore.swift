import Foundation
import GRDB
import StreamgatePluginAPI

/// APIs in the database. Saving checks the catalog rules inside the same
/// write transaction that stores the API, so two concurrent saves can never
/// both pass against a catalog that no longer holds.
public struct ApiStore: Sendable {
    let database: PortalDatabase

    public init(database: PortalDatabase) { self.database = database }

    public enum SaveOutcome: Sendable, Equatable { case created, replaced }

    public func list() async throws -> [ApiDefinition] {
        try await database.queue.read { db in try Self.all(db) }
    }

    public func get(_ name: String) async throws -> ApiDefinition? {
        try await database.queue.read { db in
            try String.fetchOne(db, sql: "SELECT definition FROM api WHERE name = ?", arguments: [name]).map(Self.decode)
        }
    }

    /// Creates the API (`replace` false: an existing name is an error) or replaces it.
    public func save(_ api: ApiDefinition, replace: Bool, knownTopics: Set<String>?) async throws -> SaveOutcome {
        try await database.queue.write { db in
            let exists = try Bool.fetchOne(db, sql: "SELECT 1 FROM api WHERE name = ?", arguments: [api.name]) ?? false
            if exists && !replace { throw PortalError.conflict("an API named '\(api.name)' exists (PUT /api/v1/apis/\(api.name) replaces it)", field: "name") }
            let others = try Self.all(db).filter { $0.name != api.name }
            do throws(ConfigurationError) {
                try ApiCatalogRules.check(api, against: others, knownTopics: knownTopics)
            } catch {
                throw PortalError.invalid(error)
            }
            let now = Date().timeIntervalSince1970
            let text = String(decoding: try JSONEncoder.sorted.encode(api.json), as: UTF8.self)
            if exists {
                try db.execute(sql: "UPDATE api SET definition = ?, updated_at = ? WHERE name = ?", arguments: [text, now, api.name])
            } else {
                try db.execute(sql: "INSERT INTO api (name, definition, created_at, updated_at) VALUES (?, ?, ?, ?)",
                               arguments: [api.name, text, now, now])
            }
            try PortalDatabase.bumpRevision(db)
            return exists ? .replaced : .created
        }
    }

    /// False when there was no such API. Its tokens are revoked with it.
    public func delete(_ name: String) async throws -> Bool {
        try await database.queue.write { db in
            try db.execute(sql: "DELETE FROM api WHERE name = ?", arguments: [name])
            guard db.changesCount > 0 else { return false }
            try TokenStore.revokeAll(api: name, db)
            try PortalDatabase.bumpRevision(db)
            return true
        }
    }

    static func all(_ db: Database) throws -> [ApiDefinition] {
        try String.fetchAll(db, sql: "SELECT definition FROM api ORDER BY name").map(decode)
    }

    /// Stored definitions were validated when saved; one that no longer
    /// parses (a rule tightened since) is an error, not silently skipped.
    static func decode(_ text: String) throws -> ApiDefinition {
        let json = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        do {
            return try ApiDefinition(json: json)
        } catch {
            throw PortalError.internal("stored API no longer valid: \(error.description)")
        }
    }
}

extension JSONEncoder {
    /// Stable output (sorted keys, no escaped slashes): stored text and ETags do not wobble.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
