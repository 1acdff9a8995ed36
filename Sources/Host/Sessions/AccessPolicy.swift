import Foundation
import StreamgatePluginAPI

/// Whether an identity may act on an endpoint now: its token must not have
/// expired, and its rights must allow the action there.
enum AccessPolicy {
    /// Why `identity` may not act on `endpoint` now, or nil when it may.
    static func refusal(of action: EndpointAction, to endpoint: String, by identity: Identity,
                        now: Double = Date().timeIntervalSince1970)
        -> (code: ClientProtocol.ErrorCode, message: String)?
    {
        if let expiry = identity.expiresAt, expiry <= now {
            return (.tokenExpired, "the token of '\(identity.subject)' expired; send a new one with {\"type\": \"auth\", \"token\": ...}")
        }
        guard identity.rights.allows(action, endpoint) else {
            let reason = identity.subject == "anonymous" && identity.rights == .none
                ? "no credentials were presented (Authorization: Bearer, ?access_token= or an auth request)"
                : "the rights of '\(identity.subject)' do not include \(action.rawValue) on \(endpoint)"
            return (.forbidden, "not allowed to \(action.rawValue): \(reason)")
        }
        return nil
    }
}
