import Foundation
import JWTKit
import StreamgatePluginAPI

/// Signs tokens with the portal's active key and records them, in one step:
/// a token exists in the list exactly when it was handed out.
public struct TokenMinter: Sendable {
    let database: PortalDatabase
    let keys: KeyStore
    let tokens: TokenStore
    let issuer: String
    let audience: String?

    public init(database: PortalDatabase, issuer: String, audience: String?) {
        self.database = database
        keys = KeyStore(database: database)
        tokens = TokenStore(database: database)
        self.issuer = issuer
        self.audience = audience
    }

    public struct Minted: Sendable {
        public let token: String
        public let record: TokenStore.Record
    }

    public func mint(_ request: MintRequest, api: String, by admin: String) async throws -> Minted {
        // A key withdrawn between choosing it and recording the token makes
        // the record refuse it; the next try signs with the new key (a bound
        // keeps a store that misbehaves from looping).
        for _ in 0..<3 {
            do {
                return try await mintOnce(request, api: api, by: admin)
            } catch is KeyStore.KeyWithdrawnWhileSigning {
                continue
            }
        }
        throw PortalError.conflict("the signing key kept being withdrawn while this token was signed; try again")
    }

    private func mintOnce(_ request: MintRequest, api: String, by admin: String) async throws -> Minted {
        let key = try await keys.active()
        let now = Date().timeIntervalSince1970.rounded(.down)
        let record = TokenStore.Record(
            id: RandomToken.base64URL(bytes: 16), api: api, subject: request.subject, subscribe: request.subscribe,
            publish: request.publish, claims: request.claims, keyID: key.id, issuedAt: now,
            expiresAt: now + Double(request.expiresIn), revokedAt: nil, createdBy: admin, description: request.description)
        var claims: [String: JSONValue] = request.claims.mapValues(JSONValue.string)
        claims["iss"] = .string(issuer)
        if let audience { claims["aud"] = .string(audience) }
        claims["sub"] = .string(record.subject)
        claims["iat"] = .number(record.issuedAt)
        claims["exp"] = .number(record.expiresAt)
        claims["jti"] = .string(record.id)
        claims["api"] = .string(api)
        claims["subscribe"] = .array(record.subscribe.map(JSONValue.string))
        claims["publish"] = .array(record.publish.map(JSONValue.string))
        let collection = JWTKeyCollection()
        await collection.add(ecdsa: try ES256PrivateKey(pem: key.privatePEM), kid: JWKIdentifier(string: key.id))
        let token = try await collection.sign(OpenClaims(values: claims), kid: JWKIdentifier(string: key.id))
        try await database.queue.write { db in try tokens.insert(record, db: db) }
        return Minted(token: token, record: record)
    }
}

/// A JWT payload as open JSON (the claims are checked by gateways, not here).
struct OpenClaims: JWTPayload {
    let values: [String: JSONValue]

    init(values: [String: JSONValue]) { self.values = values }
    init(from decoder: any Decoder) throws { values = try [String: JSONValue](from: decoder) }
    func encode(to encoder: any Encoder) throws { try values.encode(to: encoder) }
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
