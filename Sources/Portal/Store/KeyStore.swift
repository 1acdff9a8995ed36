import Foundation
import GRDB
import JWTKit
import StreamgatePluginAPI

/// The portal's token-signing keys (ES256, P-256). One key signs at a time;
/// rotating retires it from signing but keeps its public half in the JWKS
/// gateways fetch until the last token it signed has expired, so rotation
/// never cuts a valid token off. Withdrawing a key (it leaked) is the
/// opposite: it leaves the JWKS at once, its tokens are revoked and its
/// private half is erased.
public struct KeyStore: Sendable {
    let database: PortalDatabase

    public init(database: PortalDatabase) { self.database = database }

    public struct SigningKey: Sendable {
        public let id: String
        let privatePEM: String
    }

    /// The key that signs new tokens, created on first use.
    func active() async throws -> SigningKey {
        try await database.queue.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT id, private_pem FROM signing_key WHERE retired_at IS NULL AND withdrawn_at IS NULL ORDER BY created_at DESC LIMIT 1") {
                return SigningKey(id: row["id"], privatePEM: row["private_pem"])
            }
            return try Self.create(db)
        }
    }

    /// Retires the signing key and makes a new one; returns the new key's id.
    public func rotate() async throws -> String {
        try await database.queue.write { db in
            try db.execute(sql: "UPDATE signing_key SET retired_at = ? WHERE retired_at IS NULL", arguments: [Date().timeIntervalSince1970])
            return try Self.create(db).id
        }
    }

    public enum WithdrawOutcome: Sendable, Equatable {
        /// Withdrawn, with how many tokens it signed were revoked with it,
        /// and the key that signs from now on when it was the signing one.
        case withdrawn(revokedTokens: Int, newSigningKey: String?)
        case alreadyWithdrawn
        case notFound
    }

    /// Withdraws a key that must no longer be trusted, in one transaction:
    /// it leaves the JWKS (gateways refuse its tokens within one poll and end
    /// their subscriptions), every unexpired token it signed is revoked (so
    /// the token list says so, and gateways holding an older key set refuse
    /// them too), its private half is erased, and when it was the signing
    /// key a new one signs from now on.
    public func withdraw(_ id: String) async throws -> WithdrawOutcome {
        try await database.queue.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT retired_at, withdrawn_at FROM signing_key WHERE id = ?", arguments: [id]) else {
                return .notFound
            }
            if (row["withdrawn_at"] as Double?) != nil { return .alreadyWithdrawn }
            let now = Date().timeIntervalSince1970
            try db.execute(sql: """
                UPDATE signing_key SET withdrawn_at = ?, retired_at = COALESCE(retired_at, ?), private_pem = '' WHERE id = ?
                """, arguments: [now, now, id])
            let revoked = try TokenStore.revokeLive(signedBy: id, db, now: now)
            let wasSigning = (row["retired_at"] as Double?) == nil
            let next = wasSigning ? try Self.create(db).id : nil
            try PortalDatabase.bumpRevision(db)
            return .withdrawn(revokedTokens: revoked, newSigningKey: next)
        }
    }

    /// A token was signed with a key withdrawn meanwhile: it is not recorded
    /// (gateways would refuse it); the mint signs again with the new key.
    struct KeyWithdrawnWhileSigning: Error {}

    /// Records that `keyID` signed a token valid until `expiry` (inside the mint's transaction).
    static func noteExpiry(_ db: Database, keyID: String, expiry: Double) throws {
        let withdrawn = try Bool.fetchOne(db, sql: "SELECT withdrawn_at IS NOT NULL FROM signing_key WHERE id = ?", arguments: [keyID]) ?? true
        if withdrawn { throw KeyWithdrawnWhileSigning() }
        // A key retired while this token was being signed may just have left
        // the JWKS: bringing it back must reach gateways, so move the revision.
        let retiredAndGone = try Bool.fetchOne(db, sql: "SELECT retired_at IS NOT NULL AND last_expiry <= ? FROM signing_key WHERE id = ?",
                                               arguments: [Date().timeIntervalSince1970, keyID]) ?? false
        try db.execute(sql: "UPDATE signing_key SET last_expiry = MAX(last_expiry, ?) WHERE id = ?", arguments: [expiry, keyID])
        if retiredAndGone { try PortalDatabase.bumpRevision(db) }
    }

    /// The public keys gateways verify with: the signing one and every
    /// retired one some unexpired token still needs.
    static func jwks(_ db: Database, now: Double) throws -> JSONValue {
        let texts = try String.fetchAll(db, sql: """
            SELECT public_jwk FROM signing_key WHERE withdrawn_at IS NULL AND (retired_at IS NULL OR last_expiry > ?) ORDER BY created_at
            """, arguments: [now])
        let keys = try texts.map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        return .object(["keys": .array(keys)])
    }

    /// Every key, for the admin view (never the private halves).
    public func list() async throws -> [JSONValue] {
        try await database.queue.read { db in
            try Row.fetchAll(db, sql: "SELECT id, algorithm, created_at, retired_at, withdrawn_at, last_expiry FROM signing_key ORDER BY created_at").map { row in
                var object: [String: JSONValue] = [
                    "id": .string(row["id"]), "algorithm": .string(row["algorithm"]),
                    "created_at": .number(row["created_at"]), "last_expiry": .number(row["last_expiry"]),
                ]
                object["retired_at"] = (row["retired_at"] as Double?).map(JSONValue.number) ?? .null
                object["withdrawn_at"] = (row["withdrawn_at"] as Double?).map(JSONValue.number) ?? .null
                return .object(object)
            }
        }
    }

    private static func create(_ db: Database) throws -> SigningKey {
        let key = ES256PrivateKey()
        guard let parameters = key.publicKey.parameters else { throw PortalError.internal("a new P-256 key has no public parameters") }
        let id = "k" + String(Int(Date().timeIntervalSince1970), radix: 36) + "-" + RandomToken.hex(bytes: 4)
        let jwk: JSONValue = .object([
            "kty": .string("EC"), "crv": .string("P-256"), "x": .string(parameters.x), "y": .string(parameters.y),
            "kid": .string(id), "alg": .string("ES256"), "use": .string("sig"),
        ])
        let jwkText = String(decoding: try JSONEncoder.sorted.encode(jwk), as: UTF8.self)
        try db.execute(sql: """
            INSERT INTO signing_key (id, algorithm, private_pem, public_jwk, created_at) VALUES (?, 'ES256', ?, ?, ?)
            """, arguments: [id, key.pemRepresentation, jwkText, Date().timeIntervalSince1970])
        try PortalDatabase.bumpRevision(db)
        return SigningKey(id: id, privatePEM: key.pemRepresentation)
    }
}

/// Random identifiers and secrets from the system's CSPRNG.
enum RandomToken {
    static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    static func hex(bytes count: Int) -> String { hexString(bytes(count)) }

    /// Bytes as lower-case hex, two digits each.
    static func hexString(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    static func base64URL(bytes count: Int) -> String {
        Data(bytes(count)).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
