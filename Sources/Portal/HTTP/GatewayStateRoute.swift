import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import StreamgatePluginAPI

/// `GET /api/v1/gateway/state`: everything a gateway's `portal` plugins need,
/// in one document (docs/portal.md), behind the cluster credential:
///
///     {"revision": 12, "issuer": "streamgate-portal", "audience": null,
///      "apis": [{"name": "live-scores", "endpoints": [{"path", "topic", "key", "actions"}]}],
///      "jwks": {"keys": [...]}, "revoked": ["<token id>", ...]}
///
/// The ETag is the revision: a gateway sends `If-None-Match` and gets 304
/// while nothing changed, so polling every few seconds costs next to nothing.
struct GatewayStateRoute: Sendable {
    let database: PortalDatabase
    let credentialDigest: SHA256.Digest
    let issuer: String
    let audience: String?

    init(database: PortalDatabase, clusterCredential: String, issuer: String, audience: String?) {
        self.database = database
        credentialDigest = SHA256.hash(data: Data(clusterCredential.utf8))
        self.issuer = issuer
        self.audience = audience
    }

    func state(_ request: Request, _ context: PortalRequestContext) async throws -> Response {
        // Digests compared, so the time taken says nothing about the credential.
        guard let presented = request.bearerToken, SHA256.hash(data: Data(presented.utf8)) == credentialDigest else {
            throw PortalError(.unauthorized, code: "unauthenticated", "the gateway state needs the cluster credential (Authorization: Bearer ...)")
        }
        let revision = try await database.revision()
        let etag = "\"r\(revision)\""
        if let match = request.headers[.ifNoneMatch], match == etag {
            return Response(status: .notModified, headers: [.eTag: etag])
        }
        let now = Date().timeIntervalSince1970
        // The document and the revision its ETag names, from one read transaction.
        let (served, document): (Int64, JSONValue) = try await database.queue.read { db in
            let revision = try PortalDatabase.revision(db)
            let apis = try ApiStore.all(db)
            return (revision, .object([
                "revision": .number(Double(revision)),
                "issuer": .string(issuer),
                "audience": audience.map(JSONValue.string) ?? .null,
                "apis": .array(apis.map { api in
                    .object(["name": .string(api.name), "endpoints": .array(api.endpoints.map { endpoint in
                        .object(["path": .string(endpoint.path.text), "topic": .string(endpoint.topic),
                                 "key": .string(endpoint.key.text), "actions": .array(endpoint.actionNames.map(JSONValue.string))])
                    })])
                }),
                "jwks": try KeyStore.jwks(db, now: now),
                "revoked": .array(try TokenStore.revokedIDs(db, now: now).map(JSONValue.string)),
            ]))
        }
        return JSONBody.response(document, headers: [.eTag: "\"r\(served)\""])
    }
}
