import Foundation
import JWTKit
import StreamgatePluginAPI
import Synchronization

/// The `jwt` authorizer: a bearer token that is a JWT, verified with jwt-kit
/// against the configured keys (HS256/384/512 secrets, RS256 and ES256
/// public keys in PEM) and/or a JWKS file (reloaded when it changes).
///
/// Refused: a bad signature, an algorithm other than the key's own (so
/// `alg: none` and HMAC-with-a-public-key confusion never verify), `exp` in
/// the past, `nbf` in the future (both with `leeway_seconds`), another `iss`
/// or an `aud` without the configured audience. Rights come from two claims
/// holding endpoint patterns (by default `subscribe` and `publish`); the
/// identity expires with `exp`. A token that is not a JWT is left to the next
/// authorizer (abstain).
public struct JWTAuthorizerFactory: AuthorizerFactory {
    public let name = "jwt"

    public init() {}

    public func makeAuthorizer(options: ConfigSection, context: PluginContext) throws -> any Authorizer {
        var keys: [JWTKeySpec] = []
        if let raw = options.raw("keys"), raw != .null {
            guard case .array(let items) = raw else {
                throw ConfigurationError(
                    key: options.keyPath("keys"), value: raw.description,
                    expected: "an array of {\"alg\": \"HS256\", \"secret\": ...} or {\"alg\": \"RS256\", \"public_key_pem\": ...}")
            }
            for (i, item) in items.enumerated() {
                keys.append(try JWTKeySpec(ConfigSection(path: "\(options.keyPath("keys"))[\(i)]", value: item)))
            }
        }
        let jwksFile = try options.string("jwks_file")
        guard !keys.isEmpty || jwksFile != nil else {
            throw ConfigurationError(key: options.keyPath("keys"), problem: "missing: configure \"keys\", \"jwks_file\" or both")
        }
        let settings = JWTSettings(
            issuer: try options.string("issuer"),
            audience: try options.string("audience"),
            leewaySeconds: Double(try options.int("leeway_seconds", default: 30, range: 0...3600)),
            requireExpiry: try options.bool("require_exp", default: true),
            subscribeClaim: try options.string("subscribe_claim", default: "subscribe"),
            publishClaim: try options.string("publish_claim", default: "publish"))
        try options.finish()
        let authorizer = JWTAuthorizer(keys: keys, jwksFile: jwksFile, settings: settings, logger: context.logger,
                                       jwksKeyPath: options.keyPath("jwks_file"))
        // Fail at start-up, naming the key, rather than at the first client.
        try authorizer.validateKeys()
        return authorizer
    }
}

/// Claim checks and names.
struct JWTSettings: Sendable {
    let issuer: String?
    let audience: String?
    let leewaySeconds: Double
    let requireExpiry: Bool
    let subscribeClaim: String
    let publishClaim: String
}

/// One configured key.
struct JWTKeySpec: Sendable {
    let kid: String?
    let algorithm: String
    let secret: String?
    let pem: String?
    let keyPath: String

    static let algorithms = ["HS256", "HS384", "HS512", "RS256", "ES256"]

    init(_ section: ConfigSection) throws(ConfigurationError) {
        keyPath = section.path
        kid = try section.string("kid")
        algorithm = try section.requiredString("alg", expected: "one of " + Self.algorithms.joined(separator: ", "))
        guard Self.algorithms.contains(algorithm) else {
            throw ConfigurationError(key: section.keyPath("alg"), value: "\"\(algorithm)\"",
                                     expected: "one of " + Self.algorithms.joined(separator: ", "))
        }
        if algorithm.hasPrefix("HS") {
            // RFC 7518 3.2: at least as long as the hash (32, 48, 64 bytes).
            let minimum = Int(algorithm.dropFirst(2))! / 8
            guard let secret = try section.secret("secret") else {
                throw ConfigurationError(key: section.keyPath("secret"), value: nil,
                                         expected: "the shared secret (at least \(minimum) bytes), or {\"env\": NAME} or {\"file\": PATH}")
            }
            guard secret.utf8.count >= minimum else {
                throw ConfigurationError(key: section.keyPath("secret"), value: "(\(secret.utf8.count) bytes)",
                                         expected: "at least \(minimum) bytes for \(algorithm): a short HMAC secret can be guessed")
            }
            self.secret = secret
            pem = nil
        } else {
            secret = nil
            if let inline = try section.string("public_key_pem") {
                pem = inline
            } else if let file = try section.string("public_key_file") {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw ConfigurationError(key: section.keyPath("public_key_file"), value: "\"\(file)\"",
                                             expected: "a readable PEM file")
                }
                pem = text
            } else {
                throw ConfigurationError(key: section.keyPath("public_key_pem"), value: nil,
                                         expected: "the public key in PEM (or \"public_key_file\")")
            }
        }
        try section.finish()
    }
}

/// Verifies tokens with the keys of the moment (the JWKS file may change).
final class JWTAuthorizer: Authorizer {
    private struct Loaded: Sendable {
        let keys: JWTKeyCollection
        /// The algorithm each key id (nil: the default key) verifies with.
        let algorithms: [String?: String]
        let jwksModified: Date?
    }

    private let specs: [JWTKeySpec]
    private let jwksFile: String?
    /// The configuration key of the JWKS file, for errors.
    private let jwksKeyPath: String
    private let settings: JWTSettings
    private let logger: any PluginLogger
    private let loaded = Mutex<Loaded?>(nil)
    /// The JWKS file, watched for changes.
    private let jwks: WatchedFile?

    init(keys: [JWTKeySpec], jwksFile: String?, settings: JWTSettings, logger: any PluginLogger,
         jwksKeyPath: String = "jwks_file")
    {
        specs = keys
        self.jwksFile = jwksFile
        jwks = jwksFile.map(WatchedFile.init)
        self.jwksKeyPath = jwksKeyPath
        self.settings = settings
        self.logger = logger
    }

    /// Checks every key now, without waiting on the concurrency pool (the
    /// caller may be on it): PEM keys are parsed and the JWKS file decoded;
    /// the collection itself is built on the first authentication.
    func validateKeys() throws(ConfigurationError) {
        for spec in specs where spec.pem != nil {
            do {
                if spec.algorithm == "RS256" {
                    _ = try Insecure.RSA.PublicKey(pem: spec.pem!)
                } else {
                    _ = try ES256PublicKey(pem: spec.pem!)
                }
            } catch {
                throw ConfigurationError(key: spec.keyPath, problem: "cannot load the \(spec.algorithm) key: \(error)")
            }
        }
        if let jwksFile {
            guard let data = FileManager.default.contents(atPath: jwksFile) else {
                throw ConfigurationError(key: jwksKeyPath, value: "\"\(jwksFile)\"", expected: "a readable JWKS file")
            }
            let jwks: JWKS
            do {
                jwks = try JSONDecoder().decode(JWKS.self, from: data)
            } catch {
                throw ConfigurationError(key: jwksKeyPath, problem: "\(jwksFile) is not a usable JWKS: \(error)")
            }
            if let index = jwks.keys.firstIndex(where: { $0.keyIdentifier == nil }) {
                throw ConfigurationError(key: jwksKeyPath, problem: "\(jwksFile): keys[\(index)] has no \"kid\"")
            }
        }
    }

    private func build() async throws -> Loaded {
        let collection = JWTKeyCollection()
        var algorithms: [String?: String] = [:]
        for spec in specs {
            let kid = spec.kid.map { JWKIdentifier(string: $0) }
            do {
                switch spec.algorithm {
                case "HS256": await collection.add(hmac: HMACKey(from: spec.secret!), digestAlgorithm: .sha256, kid: kid)
                case "HS384": await collection.add(hmac: HMACKey(from: spec.secret!), digestAlgorithm: .sha384, kid: kid)
                case "HS512": await collection.add(hmac: HMACKey(from: spec.secret!), digestAlgorithm: .sha512, kid: kid)
                case "RS256":
                    await collection.add(rsa: try Insecure.RSA.PublicKey(pem: spec.pem!), digestAlgorithm: .sha256, kid: kid)
                default:
                    await collection.add(ecdsa: try ES256PublicKey(pem: spec.pem!), kid: kid)
                }
            } catch {
                throw ConfigurationError(key: spec.keyPath, problem: "cannot load the \(spec.algorithm) key: \(error)")
            }
            algorithms[spec.kid] = spec.algorithm
        }
        var modified: Date?
        if let jwksFile {
            modified = jwks?.modificationDate
            guard let json = try? String(contentsOfFile: jwksFile, encoding: .utf8) else {
                throw ConfigurationError(key: jwksKeyPath, value: "\"\(jwksFile)\"", expected: "a readable JWKS file")
            }
            let jwks: JWKS
            do {
                jwks = try JSONDecoder().decode(JWKS.self, from: Data(json.utf8))
                try await collection.add(jwks: jwks)
            } catch {
                throw ConfigurationError(key: jwksKeyPath, problem: "\(jwksFile) is not a usable JWKS: \(error)")
            }
            for key in jwks.keys {
                guard let kid = key.keyIdentifier?.string else { continue }
                algorithms[kid] = key.algorithm?.rawValue ?? (key.keyType == .rsa ? "RS256" : "ES256")
            }
        }
        return Loaded(keys: collection, algorithms: algorithms, jwksModified: modified)
    }

    /// Reloads the JWKS file when it changed (checked at most once a second).
    private func currentKeys() async -> Loaded? {
        if loaded.withLock({ $0 == nil }) {
            do {
                let first = try await build()
                loaded.withLock { if $0 == nil { $0 = first } }
            } catch {
                logger.log(.error, "jwt: cannot load the keys: \(error)")
                return nil
            }
        }
        guard let jwks else { return loaded.withLock { $0 } }
        if jwks.changed(since: loaded.withLock({ $0?.jwksModified })) {
            do {
                let fresh = try await build()
                loaded.withLock { $0 = fresh }
                jwks.reloaded()
                logger.log(.info, "jwt: reloaded keys from \(jwks.path)")
            } catch {
                logger.log(.error, "jwt: keeping the previous keys, cannot reload \(jwks.path): \(error)")
            }
        }
        return loaded.withLock { $0 }
    }

    /// Moves on each time the JWKS file is re-read (a key may have been removed).
    func revision() async -> UInt64 {
        _ = await currentKeys()
        return jwks?.revision ?? 0
    }

    func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        guard let token = credentials.token, let header = Self.header(of: token) else { return .abstain }
        guard let keys = await currentKeys() else { return .denied(reason: "no keys loaded") }
        let kid = header["kid"] as? String
        let alg = header["alg"] as? String ?? ""
        guard let expected = keys.algorithms[kid] ?? (kid == nil ? nil : keys.algorithms[nil]) else {
            return .denied(reason: "unknown key id '\(kid ?? "")'")
        }
        guard alg == expected else {
            return .denied(reason: "algorithm '\(alg)' is not accepted for this key (expected \(expected))")
        }
        let claims: TokenClaims
        do {
            claims = try await keys.keys.verify(token, as: TokenClaims.self)
        } catch {
            return .denied(reason: "invalid token: signature or format rejected")
        }
        return check(claims, now: Date().timeIntervalSince1970)
    }

    /// A claim's time for a message: whole seconds when it is one, the
    /// number as it came otherwise (a token may carry 1e300).
    static func seconds(_ time: Double) -> String {
        time.isFinite && abs(time) < 9e18 ? String(Int64(time)) : String(time)
    }

    /// The registered claims checked and the rights read.
    func check(_ claims: TokenClaims, now: Double) -> AuthenticationResult {
        let leeway = settings.leewaySeconds
        if let exp = claims.number("exp") {
            if now > exp + leeway { return .denied(reason: "token expired at \(Self.seconds(exp))") }
        } else if settings.requireExpiry {
            return .denied(reason: "token has no 'exp' claim")
        }
        if let nbf = claims.number("nbf"), now + leeway < nbf {
            return .denied(reason: "token not valid before \(Self.seconds(nbf))")
        }
        if let issuer = settings.issuer, claims.string("iss") != issuer {
            return .denied(reason: "token issuer is not '\(issuer)'")
        }
        if let audience = settings.audience, !claims.strings("aud").contains(audience) {
            return .denied(reason: "token audience does not include '\(audience)'")
        }
        let rights: Rights
        do {
            rights = try Rights(subscribePatterns: claims.strings(settings.subscribeClaim),
                                publishPatterns: claims.strings(settings.publishClaim))
        } catch {
            return .denied(reason: "token claims: \(error.reason)")
        }
        // The connection keeps the token until the same leeway has passed.
        return .identified(Identity(subject: claims.string("sub") ?? "unknown", rights: rights,
                                    expiresAt: claims.number("exp").map { $0 + leeway }))
    }

    /// The decoded header of something shaped like a JWT, else nil.
    static func header(of token: String) -> [String: Any]? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let data = base64URLDecode(parts[0]),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object
    }

    static func base64URLDecode(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// A token's claims as JSON values: the names of the rights claims are
/// configurable, so the payload is read as an open object.
struct TokenClaims: JWTPayload {
    let values: [String: JSONValue]

    init(values: [String: JSONValue]) { self.values = values }

    init(from decoder: any Decoder) throws {
        values = try [String: JSONValue](from: decoder)
    }

    func encode(to encoder: any Encoder) throws { try values.encode(to: encoder) }

    /// Claims are checked by `JWTAuthorizer.check`, with its settings.
    func verify(using algorithm: some JWTAlgorithm) async throws {}

    func number(_ name: String) -> Double? {
        if case .number(let n)? = values[name] { return n }
        return nil
    }

    func string(_ name: String) -> String? {
        if case .string(let s)? = values[name] { return s }
        return nil
    }

    /// A string claim as one element, an array claim's strings, else none.
    func strings(_ name: String) -> [String] {
        switch values[name] {
        case .string(let s)?: return [s]
        case .array(let items)?: return items.compactMap { if case .string(let s) = $0 { s } else { nil } }
        default: return []
        }
    }
}
