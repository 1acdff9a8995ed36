import Foundation
import StreamgatePluginAPI

/// The configured authorizers, tried in order: the first that identifies or
/// denies decides; the others are not asked. When every one abstains, a
/// connection without credentials is anonymous with no rights (it may still
/// authenticate in-band), and one with a token nobody recognises is denied.
struct AuthorizerChain: Sendable {
    let authorizers: [(name: String, authorizer: any Authorizer)]

    /// The answer, and which authorizer gave it (nil: none did).
    func decide(_ credentials: Credentials) async -> (result: AuthenticationResult, by: Int?) {
        for (index, (_, authorizer)) in authorizers.enumerated() {
            let result = await authorizer.authenticate(credentials)
            if result != .abstain { return (result, index) }
        }
        if credentials.token == nil && credentials.apiKey == nil {
            return (.identified(Identity(subject: "anonymous", rights: .none, expiresAt: nil)), nil)
        }
        return (.denied(reason: "no authorizer accepts this token"), nil)
    }

    /// Each authorizer's current revision (see `Authorizer.revision`).
    func revisions() async -> [UInt64] {
        var out: [UInt64] = []
        for (_, authorizer) in authorizers { out.append(await authorizer.revision()) }
        return out
    }

    /// The bearer token a connection presented at its upgrade: the
    /// `Authorization: Bearer` header, else the `access_token` query parameter
    /// (browsers cannot set headers on a WebSocket).
    static func token(of connection: ConnectionInfo) -> String? {
        let header = connection.authorization.trimmingCharacters(in: .whitespaces)
        if header.count > 7, header.prefix(7).lowercased() == "bearer " {
            let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
            if !token.isEmpty { return token }
        }
        for pair in connection.query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "access_token" else { continue }
            let value = String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(parts[1])
            if !value.isEmpty { return value }
        }
        return nil
    }
}
