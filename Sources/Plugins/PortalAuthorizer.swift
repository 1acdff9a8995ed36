import Foundation
import JWTKit
import StreamgatePluginAPI
import Synchronization

/// The `portal` authorizer: tokens the portal minted (ES256 JWTs), checked
/// against the portal's keys (its JWKS, rotated keys included) and its list
/// of revoked token ids, both followed live. A token's rights are
/// - bound to its claims: a segment `{sub}` (or any string claim) in a
///   pattern stands for the claim's value, so one API serves per-user streams;
/// - bounded by its API's endpoints that allow the action, as they are now:
///   an endpoint removed, or no longer allowing publish, takes the right
///   with it at the next poll.
/// A change of state re-checks live connections (`revision`), so a
/// revocation ends the token's subscriptions within one poll.
public struct PortalAuthorizerFactory: AuthorizerFactory {
    public let name = "portal"
    /// False: the options are checked only (see `BuiltinPlugins`).
    let followPortal: Bool

    public init(followPortal: Bool = true) { self.followPortal = followPortal }

    public func makeAuthorizer(options: ConfigSection, context: PluginContext) throws -> any Authorizer {
        let follower = try PortalFollowers.follower(options: options, context: context, start: followPortal)
        let leeway = try options.int("leeway_seconds", default: 30, range: 0...3600)
        try options.finish()
        return PortalAuthorizer(follower: follower, leewaySeconds: Double(leeway))
    }
}

final class PortalAuthorizer: Authorizer {
    let follower: PortalFollower
    let leewaySeconds: Double
    /// The key collection of the state revision it was built for.
    private let keys = Mutex<(revision: Int64, collection: JWTKeyCollection)?>(nil)
    /// Signatures already checked (re-checks after a change skip them).
    let verified = VerifiedTokens()

    init(follower: PortalFollower, leewaySeconds: Double) {
        self.follower = follower
        self.leewaySeconds = leewaySeconds
    }

    func revision() async -> UInt64 { follower.revision }

    func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        guard let token = credentials.token, let header = JWTAuthorizer.header(of: token) else { return .abstain }
        guard header["alg"] as? String == "ES256" else { return .denied(reason: "the portal's tokens are ES256") }
        var state = follower.state
        // A key id this state does not list: the portal may have made the key
        // since the last poll (its first token, a rotation), so ask it now.
        if let kid = header["kid"] as? String, state.map({ !$0.keyIDs.contains(kid) }) ?? true {
            await follower.refresh()
            state = follower.state
        }
        guard let state else { return .denied(reason: "the gateway has not received the portal's keys yet") }
        let now = Date().timeIntervalSince1970
        let digest = VerifiedTokens.digest(token)
        if let claims = verified.claims(of: digest, keyIDs: state.keyIDs) {
            return check(claims, state: state, now: now)
        }
        let claims: TokenClaims
        do {
            claims = try await collection(for: state).verify(token, as: TokenClaims.self)
        } catch {
            return .denied(reason: "invalid token: signature, key id or format rejected")
        }
        // The key that verified it: the header's kid (the collection picks by it).
        if let kid = header["kid"] as? String, let exp = claims.number("exp") {
            verified.insert(digest, .init(keyID: kid, claims: claims, expiry: exp + leewaySeconds), now: now)
        }
        return check(claims, state: state, now: now)
    }

    /// Claims, revocation and rights, against the state of the moment.
    func check(_ claims: TokenClaims, state: PortalState, now: Double) -> AuthenticationResult {
        guard let exp = claims.number("exp") else { return .denied(reason: "token has no 'exp' claim") }
        if now > exp + leewaySeconds { return .denied(reason: "token expired at \(JWTAuthorizer.seconds(exp))") }
        if let nbf = claims.number("nbf"), now + leewaySeconds < nbf { return .denied(reason: "token not valid before \(JWTAuthorizer.seconds(nbf))") }
        guard claims.string("iss") == state.issuer else { return .denied(reason: "token issuer is not '\(state.issuer)'") }
        if let audience = state.audience, !claims.strings("aud").contains(audience) {
            return .denied(reason: "token audience does not include '\(audience)'")
        }
        guard let id = claims.string("jti") else { return .denied(reason: "token has no 'jti' claim") }
        if state.revoked.contains(id) { return .denied(reason: "token \(id) was revoked") }
        guard let apiName = claims.string("api"), let endpoints = state.apis[apiName] else {
            return .denied(reason: "the token's API '\(claims.string("api") ?? "")' does not exist (any more)")
        }
        var bound: [String: String] = [:]
        for (name, value) in claims.values { if case .string(let text) = value { bound[name] = text } }
        let rights = Rights(subscribe: Self.rights(claims.strings("subscribe"), .subscribe, endpoints, bound),
                            publish: Self.rights(claims.strings("publish"), .publish, endpoints, bound))
        return .identified(Identity(subject: claims.string("sub") ?? "unknown", rights: rights, expiresAt: exp + leewaySeconds))
    }

    /// The token's patterns, bound to its claims and cut down to the API's
    /// endpoints allowing `action`. A pattern that does not bind (a claim
    /// missing, or a value that cannot be a segment) grants nothing.
    static func rights(_ patterns: [String], _ action: EndpointAction, _ endpoints: [PortalState.Endpoint],
                       _ claims: [String: String]) -> [EndpointPattern]
    {
        var out: [EndpointPattern] = []
        var seen: Set<[UInt8]> = []  // byte-wise, as matching is
        for text in patterns.prefix(64) {
            guard let bound = try? ClaimBinding.bind(text, claims: claims), let pattern = try? EndpointPattern(bound) else { continue }
            for endpoint in endpoints where endpoint.actions.contains(action) {
                for restricted in pattern.restricted(to: endpoint.path) where seen.insert(Array(restricted.text.utf8)).inserted {
                    out.append(restricted)
                }
            }
        }
        return out
    }

    private func collection(for state: PortalState) async throws -> JWTKeyCollection {
        if let cached = keys.withLock({ $0 }), cached.revision == state.revision { return cached.collection }
        let collection = JWTKeyCollection()
        try await collection.add(jwksJSON: String(decoding: state.jwks, as: UTF8.self))
        keys.withLock { $0 = (state.revision, collection) }
        return collection
    }
}
