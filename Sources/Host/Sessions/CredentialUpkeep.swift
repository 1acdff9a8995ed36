import CFanout
import Foundation
import StreamgatePluginAPI
import Synchronization

/// What happens to live connections as time passes (`upkeep`, run once a
/// second by a `PeriodicService`): tokens
/// about to expire are warned, expired ones lose their subscriptions (or the
/// connection, per `sessions.on_token_expiry`), and when an authorizer's
/// credentials change (a tokens file or key set was edited, a webhook
/// re-check is due) every connection it identified is checked again, so a
/// revocation takes effect without a reconnect.
final class CredentialUpkeep: Sendable {
    private let authenticator: ConnectionAuthenticator
    private let table: SessionTable
    private let fanout: any FanoutPort

    init(authenticator: ConnectionAuthenticator, table: SessionTable, fanout: any FanoutPort) {
        self.authenticator = authenticator
        self.table = table
        self.fanout = fanout
    }

    func upkeep(now: Double = Date().timeIntervalSince1970) async {
        await recheckRevoked(now: now)
        applyExpiry(now: now)
    }

    private func recheckRevoked(now: Double) async {
        let authorizers = authenticator.authorizers
        let revisions = await authorizers.revisions()
        authenticator.noteRevisions(revisions)
        // Each connection was decided on a state at least as new as the
        // revision it records (the one seen before its decision began), so
        // one recording another revision may have been decided on an older
        // state: a revocation published while its decision was under way, or
        // before the first look (nil), is caught here.
        let affected = table.withEverySession { table in
            table.compactMap { conn, session -> (cf_conn_id, Credentials, Double?)? in
                guard let by = session.decidedBy, !session.expired,
                      revisions.indices.contains(by), session.decidedAtRevision != revisions[by] else { return nil }
                return (conn, session.credentials, session.identity?.expiresAt)
            }
        }
        for (conn, credentials, expiry) in affected {
            let decision = await authorizers.decide(credentials)
            switch decision.result {
            case .identified(let identity):
                authenticator.replaceIdentity(conn, identity, credentials: credentials, by: decision.by,
                                              revision: decision.by.map { revisions[$0] }, reply: nil,
                                              why: "the credentials' rights no longer include subscribe on")
            case .denied where expiry.map { Date().timeIntervalSince1970 >= $0 } ?? false:
                // Refused because it expired: that is the expiry step's to say
                // (token_expired), at its next look, not a revocation.
                continue
            case .denied(let reason):
                authenticator.withdraw(conn, code: .unauthorized, message: "credentials revoked: \(reason)",
                                       closeReason: "credentials revoked")
            case .abstain:
                authenticator.withdraw(conn, code: .unauthorized, message: "credentials revoked",
                                       closeReason: "credentials revoked")
            }
        }
    }

    private func applyExpiry(now: Double) {
        let warning = authenticator.settings.tokenExpiryWarningSeconds
        let (warn, expire) = table.withEverySession { table -> ([(cf_conn_id, Double)], [(cf_conn_id, Identity)]) in
            var warn: [(cf_conn_id, Double)] = []
            var expire: [(cf_conn_id, Identity)] = []
            for (conn, session) in table {
                guard let identity = session.identity, let expiry = identity.expiresAt, !session.expired else { continue }
                if now >= expiry {
                    expire.append((conn, identity))
                } else if now >= expiry - warning && !session.warned {
                    warn.append((conn, expiry))
                    table[conn]?.warned = true
                }
            }
            return (warn, expire)
        }
        for (conn, expiry) in warn { fanout.sendText(conn, ClientProtocol.tokenExpiring(expiresAt: expiry)) }
        for (conn, identity) in expire {
            authenticator.withdraw(
                conn, code: .tokenExpired,
                message: "the token of '\(identity.subject)' expired at \(Int64(identity.expiresAt ?? now)); send a new one with {\"type\": \"auth\", \"token\": ...}",
                closeReason: "token expired")
        }
    }
}
