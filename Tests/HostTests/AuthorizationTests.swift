import Foundation
import JWTKit
import StreamgatePluginAPI
import Testing

@testable import StreamgatePlugins
@testable import streamgate

/// Tests of authorization: rights, the authorizer chain, bearer token
/// extraction, the `jwt` and `static-tokens` authorizers (claims, signatures,
/// algorithm attacks, key files reloaded while running, configuration errors),
/// the refusals of `AccessPolicy` and the `authorization` section of the
/// gateway configuration. Helpers live in this namespace so they cannot clash
/// with other test files.
enum AuthorizationTests {
    // MARK: Connections and credentials

    static func connection(query: String = "", authorization: String = "") -> ConnectionInfo {
        ConnectionInfo(remoteAddress: "127.0.0.1:50000", query: query, authorization: authorization, origin: "")
    }

    static func credentials(_ token: String?) -> Credentials {
        Credentials(token: token, connection: connection())
    }

    static func rights(_ subscribe: [String], _ publish: [String] = []) throws(EndpointError) -> Rights {
        try Rights(subscribePatterns: subscribe, publishPatterns: publish)
    }

    static var now: Double { Date().timeIntervalSince1970.rounded(.down) }

    /// The identity of an `.identified` result, else a recorded failure.
    static func identity(_ result: AuthenticationResult, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> Identity
    {
        guard case .identified(let identity) = result else {
            Issue.record("expected an identity, got \(result)", sourceLocation: sourceLocation)
            throw Failure.unexpected
        }
        return identity
    }

    /// The reason of a `.denied` result, else a recorded failure.
    static func denial(_ result: AuthenticationResult, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> String
    {
        guard case .denied(let reason) = result else {
            Issue.record("expected a denial, got \(result)", sourceLocation: sourceLocation)
            throw Failure.unexpected
        }
        return reason
    }

    enum Failure: Error { case unexpected }

    // MARK: Plugin context

    /// Keeps what a plugin logs.
    final class CollectingLogger: PluginLogger, @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [(level: PluginLogLevel, message: String)] = []

        func log(_ level: PluginLogLevel, _ message: String) {
            lock.withLock { lines.append((level, message)) }
        }

        var messages: [(level: PluginLogLevel, message: String)] { lock.withLock { lines } }
    }

    static func section(_ text: String, path: String = "authorization.options") throws -> ConfigSection {
        try ConfigSection(path: path, value: JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)))
    }

    static func section(_ object: [String: Any], path: String = "authorization.options") throws -> ConfigSection {
        try section(String(decoding: JSONSerialization.data(withJSONObject: object), as: UTF8.self), path: path)
    }

    // MARK: Files

    /// A fresh directory, removed by `remove`.
    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sg-auth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func remove(_ url: URL) {
        try? FileManager.default.removeItem(at: url)
    }

    /// Writes `text` and sets its modification date explicitly, so that a
    /// rewrite is seen as a change whatever the file system's clock
    /// resolution.
    static func write(_ text: String, to url: URL, modified: Date) throws {
        try Data(text.utf8).write(to: url)
        try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: url.path)
    }

    static func json(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Just over the once-a-second check of the file-backed authorizers.
    static func waitForReloadInterval() async throws {
        try await Task.sleep(for: .milliseconds(1_100))
    }

    // MARK: Tokens

    enum Audience: Codable, Sendable {
        case one(String)
        case many([String])

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .one(s) } else { self = .many(try c.decode([String].self)) }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .one(let s): try c.encode(s)
            case .many(let a): try c.encode(a)
            }
        }
    }

    /// The claims of test tokens (nil fields are left out).
    struct Claims: JWTPayload {
        var sub: String? = "alice"
        var exp: Double? = AuthorizationTests.now + 3_600
        var nbf: Double?
        var iss: String?
        var aud: Audience?
        var subscribe: [String]? = ["/scores/**"]
        var publish: [String]? = ["/chat/*"]

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static let secret = "0123456789abcdef0123456789abcdef-hs"
    static let otherSecret = "fedcba9876543210fedcba9876543210-hs"
    /// Long enough for HS512 (jwt-kit asserts a key at least as long as the hash).
    static let longSecret = String(repeating: "0123456789abcdef", count: 4) + "-long"

    static func signHMAC(_ payload: some JWTPayload, secret: String = AuthorizationTests.secret, digest: DigestAlgorithm = .sha256,
                         kid: String? = nil) async throws -> String
    {
        let keys = JWTKeyCollection()
        let id = kid.map { JWKIdentifier(string: $0) }
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest, kid: id)
        return try await keys.sign(payload, kid: id)
    }

    static func signRSA(_ payload: some JWTPayload, privateKeyPEM: String = rsaPrivateKeyPEM, kid: String? = nil)
        async throws -> String
    {
        let keys = JWTKeyCollection()
        let id = kid.map { JWKIdentifier(string: $0) }
        await keys.add(rsa: try Insecure.RSA.PrivateKey(pem: privateKeyPEM), digestAlgorithm: .sha256, kid: id)
        return try await keys.sign(payload, kid: id)
    }

    /// Signs with the RSA key of `jwksModulus` (for JWKS files).
    static func signJWKSRSA(_ payload: some JWTPayload, kid: String) async throws -> String {
        let keys = JWTKeyCollection()
        let id = JWKIdentifier(string: kid)
        await keys.add(rsa: try Insecure.RSA.PrivateKey(modulus: jwksModulus, exponent: "AQAB", privateExponent: jwksPrivateExponent),
                       digestAlgorithm: .sha256, kid: id)
        return try await keys.sign(payload, kid: id)
    }

    static func signES256(_ payload: some JWTPayload, key: ES256PrivateKey, kid: String? = nil) async throws -> String {
        let keys = JWTKeyCollection()
        let id = kid.map { JWKIdentifier(string: $0) }
        await keys.add(ecdsa: key, kid: id)
        return try await keys.sign(payload, kid: id)
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func base64URLDecode(_ text: Substring) throws -> Data {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return try #require(Data(base64Encoded: base64))
    }

    /// A token assembled by hand (no library would sign it).
    static func rawToken(header: String, payload: String, signature: String = "") -> String {
        base64URL(Data(header.utf8)) + "." + base64URL(Data(payload.utf8)) + "." + signature
    }

    /// The three parts of a token.
    static func parts(_ token: String) throws -> [Substring] {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        try #require(parts.count == 3)
        return parts
    }

    static func decodedHeader(_ token: String) throws -> [String: Any] {
        let data = try base64URLDecode(parts(token)[0])
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    // MARK: jwt authorizer

    /// Runs `body` on a thread of its own and waits for it without holding
    /// a thread of the cooperative pool. `JWTAuthorizerFactory.makeAuthorizer`
    /// blocks its thread until a task it starts has finished: called from
    /// tests running in parallel on the pool, it can take every thread of the
    /// pool and wait forever.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    static func jwt(_ options: [String: Any], logger: CollectingLogger = CollectingLogger()) async throws
        -> JWTAuthorizer
    {
        let options = try section(options)
        let authorizer = try await offPool {
            try JWTAuthorizerFactory().makeAuthorizer(options: options, context: PluginContext(logger: logger))
        }
        return try #require(authorizer as? JWTAuthorizer)
    }

    static func hs256(_ extra: [String: Any] = [:], secret: String = AuthorizationTests.secret) -> [String: Any] {
        var options: [String: Any] = ["keys": [["alg": "HS256", "secret": secret]]]
        options.merge(extra) { $1 }
        return options
    }

    static func jwtError(_ options: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) async
        -> ConfigurationError?
    {
        do {
            let options = try section(options)
            _ = try await offPool {
                try JWTAuthorizerFactory().makeAuthorizer(options: options, context: PluginContext(logger: CollectingLogger()))
            }
            return nil
        } catch let error as ConfigurationError {
            return error
        } catch {
            Issue.record("not a configuration error: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    static func authenticate(_ authorizer: any Authorizer, _ token: String?) async -> AuthenticationResult {
        await authorizer.authenticate(credentials(token))
    }

    // MARK: static-tokens authorizer

    static func tokensFile(_ entries: [[String: Any]]) throws -> String {
        try json(["tokens": entries])
    }

    static func staticTokens(file: String, logger: CollectingLogger = CollectingLogger()) throws
        -> StaticTokensAuthorizer
    {
        let authorizer = try StaticTokensAuthorizerFactory().makeAuthorizer(
            options: section(["file": file]), context: PluginContext(logger: logger))
        return try #require(authorizer as? StaticTokensAuthorizer)
    }

    static func staticTokensError(_ options: [String: Any], sourceLocation: SourceLocation = #_sourceLocation)
        -> ConfigurationError?
    {
        do {
            _ = try StaticTokensAuthorizerFactory().makeAuthorizer(
                options: section(options), context: PluginContext(logger: CollectingLogger()))
            return nil
        } catch let error as ConfigurationError {
            return error
        } catch {
            Issue.record("not a configuration error: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// A tokens file whose entries have a mistyped or misspelt field is
    /// refused, naming the entry and the field, rather than read as a token
    /// that never expires.
    @Test static func mistypedTokenEntriesAreRefused() throws {
        let token = "a-token-of-enough-length"
        for (entry, field) in [(["token": token, "expires": 1], "tokens[0].expires"),
                               (["token": token, "expires_at": "2001-01-01"], "tokens[0].expires_at"),
                               (["token": token, "subscribe": "/a/**"], "tokens[0].subscribe"),
                               (["token": token, "subject": 7], "tokens[0].subject")] as [([String: Any], String)] {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString).json")
            try Data(try tokensFile([entry]).utf8).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let error = try #require(staticTokensError(["file": file.path]))
            #expect(error.description.contains(field), "\(error)")
        }
    }

    // MARK: Keys (the RSA test keys of jwt-kit's own test suite)

    static let rsaPublicKeyPEM = """
        -----BEGIN PUBLIC KEY-----
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAy/FtQ/cOcx6ZgyaqU54C
        ESfkpttXuNnEZ07nYXXo8ylIiUFpB0r0Fecgv/tIhF1LFCWBHUsqyoSRQz0/iBRn
        YyIsG+yF/q1K3ll5Q/2GAS9/28jBuJGKDuKIj6dgPlr33si6bjeePTl4ZO6OZFxG
        Yyn4x035pwGwjKGFuQRKYh0AtxwHiWeRIsAJ/B2Z+VGOpcSXH+x/YUfN8Q9FuyGU
        zcsVLuGizbooRSMSSoD/y/8veWOnXWbMsh0KKTON/+yTmAcLn2tOzFmsYgHQXatW
        0f2XjrdmmWl4VfiekFKFDvGenxum9nEJrzIJOMm6qHnIiyCNA3xbMqmr7oqeIUa+
        fQIDAQAB
        -----END PUBLIC KEY-----
        """

    static let rsaPrivateKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDL8W1D9w5zHpmD
        JqpTngIRJ+Sm21e42cRnTudhdejzKUiJQWkHSvQV5yC/+0iEXUsUJYEdSyrKhJFD
        PT+IFGdjIiwb7IX+rUreWXlD/YYBL3/byMG4kYoO4oiPp2A+WvfeyLpuN549OXhk
        7o5kXEZjKfjHTfmnAbCMoYW5BEpiHQC3HAeJZ5EiwAn8HZn5UY6lxJcf7H9hR83x
        D0W7IZTNyxUu4aLNuihFIxJKgP/L/y95Y6ddZsyyHQopM43/7JOYBwufa07MWaxi
        AdBdq1bR/ZeOt2aZaXhV+J6QUoUO8Z6fG6b2cQmvMgk4ybqoeciLII0DfFsyqavu
        ip4hRr59AgMBAAECggEAUIw994XwMw922hG/W98gOd5jtHMVJnD73UGQqTGEm+VG
        PM+Ux8iWtr/ec3Svo3elW4OkhwlVET9ikAf0u64zVzf769ty4K9YzpDQEEZlUrqL
        6SZVPKxetppKDVKx9G7BT0BAQZ+947h7EIIXwxOeyTOeijkFzSwhqqlwwy4qoqzV
        FTQS20QHE62hxzwuS5HBqw8ds183qAg9NbzR0Cp4za9qTiBB6C8KEcLqeatO+q+d
        VCDsJcAMZOvW14N6BozKgbQ/WXZQ/3kNUPBndZLzzqaILFNmB1Zf2DVVJ9gU7+EK
        xOac60StIfG81NllCTBrmRVq8yitNqwmutHMlxrIkQKBgQDvp39MkEHtNunFGkI5
        R8IB5BZjtx5OdRBKkmPasmNU8U0XoQAJUKY/9piIpCtRi87tMXv8WWmlbULi66pu
        4BnMIisw78xlIWRZTSizFrkFcEoVgEnbZBtSrOg/J5PAcjLEGCQoAdmMXAekR2/m
        htv7FPijHPNUjyIFLaxwjl9izwKBgQDZ2mQeKNRHjIb5ZBzB0ZCvUy2y4+kaLrhZ
        +CWMN1flL4dd1KuZKvCEfHY9kWOjqw6XneN4yT0aPmbBft4fihiiNW0Sm8i+fSpy
        g0klw2HJl49wnwctBpRgTdMKGo9n14OGeu0xKOAy7I4j1tKrUXiRWnP9R583Ti7c
        w7YHgdHM8wKBgEV147SaPzF08A6bzMPzY2zO4hpmsdcFoQIsKdryR04QXkrR9EO+
        52C0pYM9Kf0Jq6Ed7ZS3iaJT58YDjjNyqqd648/cQP6yzfYAIiK+HERSRnay5zU6
        b5zn1qyvWOi3cLVbVedumdJPvjtEJU/ImKvOaT5FntVMYwzjLw60hTsLAoGAZJnt
        UeAY51GFovUQMpDL96q5l7qXknewuhtVe4KzHCrun+3tsDWcDBJNp/DTymjbvDg1
        KzoC9XOLkB8+A+KJrZ5uWAGImi7Cw07NIJsxNR7AJonJjolTS4Wkxy2su49SNW/e
        yKzPm7SRjwtNDb/5pWXX2kaQx8Fa8qeOD7lrYPECgYAwQ6o0vYmr+L1tOZZgMVv9
        Jusa8beVUH5hyduJjmxbYOtFTkggAozdx7rs4BgyRsmDlV48cEmcVf/7IH4gMJLb
        O+bbERwCYUChe+piANhnwfwDHzbRd8mmQus54P06X7bWu6Rmi7gbQGVN/Z6VhbIm
        D2cOo0w4bk/3yb01xz1MEw==
        -----END PRIVATE KEY-----
        """

    /// A second RSA key, given by its components (base64url), for JWKS files.
    static let jwksModulus = """
        vTHHoCaR0tlYfvapRv94hUTMrdSymIrWIIZ5Kmv5bIYWtK0TMX0icLkB0PzR2IDLj1L7hzBKUljBGzjf6ujfZwru5-odDZ344A6AhH5B5Zie1ALUTnizD-8XtWcdOtv4aF5NwgRJns0YY-HVr_KKfPZurfMf7JI2wSCt0TRRUixkfJgypnLNZNMowcMiGD9GYdCb2mC43V8DKNpUIIIUJK_auxqAxdEnY6GwI4zYnQdCv8ULai_LcB2CQhj5gm9PeKI6K1qkKs5_F1N2-2y9srrSk7pYPU0xxrj5Ap5GsTaJJJhV9QV1bgDiJaakWhh2m9jSs6SsufHCPT5RiCVh5Q
        """

    static let jwksPrivateExponent = """
        B0fVIMqbLfwDNc-UMBFAuBAvuDjJLqmZF-NU4lcJYC3Aze8jH_Jq0t-rvDkecjBypO9Skp8_HPAhbkTACTAw-KwpCW-u8okzvJuSQocBTi6TXiFFvkdSzLgst2RicZNpecq3P1Ie6yeFWsKkEINK5Qguti72-Yme5cu2JKjYwEq37c94_hNdD4CPY7XebgcXeb8dnqr40--WVIbyxSYl5uV6ZRx7vQGXyZwFezhgoyYMhkoRs88iukTeOjs_MRfmTr-akfYm67Pzwm0bC7gHU0aNS_apl7KDNfIO2MOE11WDYKmul1VmH6N0mEaxdOa_Mw5S0JlB9szX3lAEd5-buQ
        """

    static func rsaJWK(kid: String, alg: String? = "RS256") -> [String: String] {
        var jwk = ["kty": "RSA", "kid": kid, "n": jwksModulus, "e": "AQAB", "use": "sig"]
        jwk["alg"] = alg
        return jwk
    }

    static func ecJWK(_ key: ES256PrivateKey, kid: String, alg: String? = "ES256") throws -> [String: String] {
        let parameters = try #require(key.publicKey.parameters)
        var jwk = ["kty": "EC", "crv": "P-256", "kid": kid, "x": parameters.x, "y": parameters.y, "use": "sig"]
        jwk["alg"] = alg
        return jwk
    }

    static func jwks(_ keys: [[String: String]]) throws -> String {
        try json(["keys": keys])
    }

    // MARK: Chain

    /// Records, in order, which test authorizers were asked.
    actor CallLog {
        private(set) var calls: [String] = []
        private(set) var tokens: [String?] = []

        func record(_ name: String, _ token: String?) {
            calls.append(name)
            tokens.append(token)
        }
    }

    /// Answers what it is told to and records that it was asked.
    struct ScriptedAuthorizer: Authorizer {
        let name: String
        let result: AuthenticationResult
        let log: CallLog
        var currentRevision: UInt64 = 0

        func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
            await log.record(name, credentials.token)
            return result
        }

        func revision() async -> UInt64 { currentRevision }
    }

    static func chain(_ entries: [(String, AuthenticationResult)], log: CallLog) -> AuthorizerChain {
        AuthorizerChain(authorizers: entries.map {
            (name: $0.0, authorizer: ScriptedAuthorizer(name: $0.0, result: $0.1, log: log) as any Authorizer)
        })
    }

    static func alice(expiresAt: Double? = nil) throws -> Identity {
        Identity(subject: "alice", rights: try rights(["/a/**"]), expiresAt: expiresAt)
    }

    // MARK: Gateway configuration

    static let source = #""source":{"plugin":"generator","options":{}}"#

    static func gateway(_ authorization: String) throws(ConfigurationErrorInFile) -> GatewayConfiguration {
        try GatewayConfiguration.parse(Data("{\"authorization\": \(authorization), \(source)}".utf8), file: "auth.json")
    }

    static func gatewayError(_ authorization: String) -> String? {
        do {
            _ = try gateway(authorization)
            return nil
        } catch {
            return error.message
        }
    }

    /// The authorizers of a configuration, built (off the pool, see `offPool`).
    static func pluginSet(_ authorization: String) async throws -> [(name: String, authorizer: any Authorizer)] {
        let configuration = try gateway(authorization)
        return try await offPool {
            try PluginSet(configuration: configuration, registry: .builtin()).authorizers.authorizers
        }
    }

    static func pluginSetError(_ authorization: String, sourceLocation: SourceLocation = #_sourceLocation) async
        -> String?
    {
        do {
            _ = try await pluginSet(authorization)
            return nil
        } catch let error as ConfigurationErrorInFile {
            return error.message
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }
}

// MARK: - Rights and patterns

extension AuthorizationTests {
    @Suite("Authorization: Rights")
    struct RightsTests {
        @Test func patternsPerAction() throws {
            let r = try rights(["/scores/**", "/news/*/live"], ["/chat/*"])
            #expect(r.allows(.subscribe, "/scores"))
            #expect(r.allows(.subscribe, "/scores/nba/live"))
            #expect(r.allows(.subscribe, "/news/eu/live"))
            #expect(!r.allows(.subscribe, "/news/eu"))
            #expect(!r.allows(.subscribe, "/news//live"))
            #expect(!r.allows(.subscribe, "/chat/room"))
            #expect(r.allows(.publish, "/chat/room"))
            #expect(!r.allows(.publish, "/chat/room/x"))
            #expect(!r.allows(.publish, "/scores/nba"))
            #expect(!r.allows(.subscribe, "scores/nba"))
        }

        @Test func noneAndAll() {
            for endpoint in ["/", "/a", "/a/b/c"] {
                #expect(!Rights.none.allows(.subscribe, endpoint))
                #expect(!Rights.none.allows(.publish, endpoint))
                #expect(Rights.all.allows(.subscribe, endpoint))
                #expect(Rights.all.allows(.publish, endpoint))
            }
            #expect(!Rights.all.allows(.subscribe, "no-slash"))
        }

        @Test func aBadPatternIsNamed() {
            #expect(throws: EndpointError.self) { try rights(["scores/**"]) }
            do {
                _ = try rights(["/ok/**"], ["/ok", "/sc*res"])
                Issue.record("accepted a bad pattern")
            } catch {
                #expect(error.reason.contains("'/sc*res'"), "\(error.reason)")
                #expect(error.reason.hasPrefix("bad endpoint pattern"), "\(error.reason)")
            }
            do {
                _ = try rights(["nope"])
                Issue.record("accepted a bad pattern")
            } catch {
                #expect(error.reason.contains("'nope'"), "\(error.reason)")
                #expect(error.reason.contains("starts with '/'"), "\(error.reason)")
            }
        }

        @Test func rightsCompareByPatterns() throws {
            #expect(try rights(["/a/**"], []) == rights(["/a/**"]))
            #expect(try rights(["/a/**"], []) != rights([], ["/a/**"]))
            #expect(try rights([], []) == Rights.none)
        }
    }
}

// MARK: - Chain

extension AuthorizationTests {
    @Suite("Authorization: AuthorizerChain")
    struct ChainTests {
        @Test func firstDecisiveAnswerWinsAndLaterOnesAreNotAsked() async throws {
            let log = CallLog()
            let a = try alice()
            let bob = Identity(subject: "bob", rights: .all, expiresAt: nil)
            let c = chain([("one", .abstain), ("two", .identified(a)), ("three", .identified(bob))], log: log)
            let (result, by) = await c.decide(credentials("tok"))
            #expect(result == .identified(a))
            #expect(by == 1)
            #expect(await log.calls == ["one", "two"])
            #expect(await log.tokens == ["tok", "tok"])
        }

        @Test func theFirstAuthorizerDecidesAlone() async throws {
            let log = CallLog()
            let a = try alice()
            let c = chain([("one", .identified(a)), ("two", .denied(reason: "no"))], log: log)
            #expect(await c.decide(credentials("tok")).result == .identified(a))
            #expect(await log.calls == ["one"])
        }

        @Test func aDenialStopsTheChain() async throws {
            let log = CallLog()
            let c = chain([("one", .abstain), ("two", .denied(reason: "forged")), ("three", .identified(try alice()))],
                          log: log)
            let (result, by) = await c.decide(credentials("tok"))
            #expect(result == .denied(reason: "forged"))
            #expect(by == 1)
            #expect(await log.calls == ["one", "two"])
        }

        @Test func allAbstainWithoutATokenIsAnonymousWithoutRights() async {
            let log = CallLog()
            let c = chain([("one", .abstain), ("two", .abstain)], log: log)
            let (result, by) = await c.decide(credentials(nil))
            #expect(result == .identified(Identity(subject: "anonymous", rights: .none, expiresAt: nil)))
            #expect(by == nil)
            #expect(await log.calls == ["one", "two"])
            #expect(await log.tokens == [nil, nil])
        }

        @Test func allAbstainWithATokenIsDenied() async throws {
            let log = CallLog()
            let c = chain([("one", .abstain), ("two", .abstain)], log: log)
            let (result, by) = await c.decide(credentials("who-knows"))
            let reason = try denial(result)
            #expect(reason.contains("no authorizer accepts"))
            #expect(by == nil)
            #expect(await log.calls == ["one", "two"])
        }

        @Test func anEmptyChainFollowsTheSameRules() async throws {
            let c = AuthorizerChain(authorizers: [])
            #expect(await c.decide(credentials(nil)).result
                == .identified(Identity(subject: "anonymous", rights: .none, expiresAt: nil)))
            _ = try denial(await c.decide(credentials("x")).result)
        }

        @Test func revisionsInOrder() async {
            let log = CallLog()
            let c = AuthorizerChain(authorizers: [
                ("a", ScriptedAuthorizer(name: "a", result: .abstain, log: log, currentRevision: 7)),
                ("b", ScriptedAuthorizer(name: "b", result: .abstain, log: log, currentRevision: 2)),
            ])
            #expect(await c.revisions() == [7, 2])
            #expect(await AuthorizerChain(authorizers: []).revisions() == [])
        }

        /// The real plugins chained: a JWT is the jwt authorizer's to judge
        /// (even when it refuses it); an opaque token goes on to static-tokens.
        @Test func jwtThenStaticTokens() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            try write(tokensFile([["token": "service-token-0123456789", "subject": "svc", "subscribe": ["/svc/**"]]]),
                      to: file, modified: Date())
            let c = AuthorizerChain(authorizers: [
                ("jwt", try await jwt(hs256())),
                ("static-tokens", try staticTokens(file: file.path)),
            ])
            let jwtResult = await c.decide(credentials(try await signHMAC(Claims())))
            #expect(try identity(jwtResult.result).subject == "alice")
            #expect(jwtResult.by == 0)

            let opaque = await c.decide(credentials("service-token-0123456789"))
            #expect(try identity(opaque.result).subject == "svc")
            #expect(opaque.by == 1)

            let forged = await c.decide(credentials(try await signHMAC(Claims(), secret: otherSecret)))
            _ = try denial(forged.result)
            #expect(forged.by == 0)

            let unknown = await c.decide(credentials("not-a-known-token-at-all"))
            _ = try denial(unknown.result)
            #expect(unknown.by == nil)

            let anonymous = await c.decide(credentials(nil))
            #expect(try identity(anonymous.result).subject == "anonymous")
            #expect(anonymous.by == nil)
        }
    }
}

// MARK: - Token extraction

extension AuthorizationTests {
    @Suite("Authorization: bearer token of a connection")
    struct TokenExtractionTests {
        static func token(query: String = "", authorization: String = "") -> String? {
            AuthorizerChain.token(of: connection(query: query, authorization: authorization))
        }

        @Test func authorizationHeader() {
            #expect(Self.token(authorization: "Bearer abc.def.ghi") == "abc.def.ghi")
            #expect(Self.token(authorization: "bearer xyz") == "xyz")
            #expect(Self.token(authorization: "BEARER xyz") == "xyz")
            #expect(Self.token(authorization: "  Bearer    xyz   ") == "xyz")
            #expect(Self.token(authorization: "Bearer x") == "x")
        }

        @Test func headersThatCarryNoBearerToken() {
            #expect(Self.token(authorization: "Basic dXNlcjpwYXNz") == nil)
            #expect(Self.token(authorization: "Bearer") == nil)
            #expect(Self.token(authorization: "Bearer    ") == nil)
            #expect(Self.token(authorization: "Bearerxyz") == nil)
            #expect(Self.token(authorization: "") == nil)
        }

        @Test func queryParameter() {
            #expect(Self.token(query: "access_token=abc") == "abc")
            #expect(Self.token(query: "a=1&access_token=x%2By&b=2") == "x+y")
            #expect(Self.token(query: "access_token=a%2Eb%2Ec") == "a.b.c")
            #expect(Self.token(query: "a=1&b=2") == nil)
            #expect(Self.token(query: "access_token=") == nil)
            #expect(Self.token(query: "access_token") == nil)
            #expect(Self.token(query: "") == nil)
            #expect(Self.token(query: "xaccess_token=abc&access_tokenx=def") == nil)
            #expect(Self.token(query: "access_token=&access_token=second") == "second")
            #expect(Self.token(query: "access_token=a=b") == "a=b")
        }

        @Test func headerIsPreferredOverQuery() {
            #expect(Self.token(query: "access_token=from-query", authorization: "Bearer from-header") == "from-header")
            #expect(Self.token(query: "access_token=from-query", authorization: "Basic abc") == "from-query")
            #expect(Self.token(query: "access_token=from-query", authorization: "Bearer ") == "from-query")
        }
    }
}

// MARK: - AccessPolicy.refusal

extension AuthorizationTests {
    @Suite("Authorization: refusals")
    struct RefusalTests {
        @Test func expiryBoundary() throws {
            let a = try alice(expiresAt: 1_000)
            #expect(AccessPolicy.refusal(of: .subscribe, to: "/a/x", by: a, now: 999.5) == nil)
            let atExpiry = try #require(AccessPolicy.refusal(of: .subscribe, to: "/a/x", by: a, now: 1_000))
            #expect(atExpiry.code == .tokenExpired)
            #expect(atExpiry.message.contains("'alice'"))
            #expect(atExpiry.message.contains("auth"))
            let after = try #require(AccessPolicy.refusal(of: .publish, to: "/a/x", by: a, now: 5_000))
            #expect(after.code == .tokenExpired)
        }

        @Test func expiryComesBeforeRights() throws {
            let a = try alice(expiresAt: 1_000)
            let refusal = try #require(AccessPolicy.refusal(of: .publish, to: "/elsewhere", by: a, now: 2_000))
            #expect(refusal.code == .tokenExpired)
        }

        @Test func noExpiryNeverExpires() throws {
            let a = try alice()
            #expect(AccessPolicy.refusal(of: .subscribe, to: "/a", by: a, now: 1e12) == nil)
        }

        @Test func forbiddenNamesSubjectActionAndEndpoint() throws {
            let a = Identity(subject: "alice", rights: try rights(["/a/**"], ["/chat/*"]), expiresAt: 2_000)
            #expect(AccessPolicy.refusal(of: .publish, to: "/chat/room", by: a, now: 1_000) == nil)
            let publish = try #require(AccessPolicy.refusal(of: .publish, to: "/a/b", by: a, now: 1_000))
            #expect(publish.code == .forbidden)
            #expect(publish.message == "not allowed to publish: the rights of 'alice' do not include publish on /a/b")
            let subscribe = try #require(AccessPolicy.refusal(of: .subscribe, to: "/chat/room", by: a, now: 1_000))
            #expect(subscribe.code == .forbidden)
            #expect(subscribe.message.hasPrefix("not allowed to subscribe: "))
            #expect(subscribe.message.contains("'alice'"))
            #expect(subscribe.message.contains("subscribe on /chat/room"))
        }

        @Test func anonymousIsToldToPresentCredentials() throws {
            let anonymous = Identity(subject: "anonymous", rights: .none, expiresAt: nil)
            let refusal = try #require(AccessPolicy.refusal(of: .subscribe, to: "/a", by: anonymous, now: 0))
            #expect(refusal.code == .forbidden)
            #expect(refusal.message.contains("no credentials were presented"))
            #expect(refusal.message.hasPrefix("not allowed to subscribe: "))
        }

        @Test func anIdentityWithRightsIsNotToldItIsAnonymous() throws {
            let named = Identity(subject: "anonymous", rights: try rights(["/public/**"]), expiresAt: nil)
            let refusal = try #require(AccessPolicy.refusal(of: .subscribe, to: "/private", by: named, now: 0))
            #expect(!refusal.message.contains("no credentials"))
            #expect(refusal.message.contains("do not include subscribe on /private"))
        }
    }
}

// MARK: - jwt: accepted tokens

extension AuthorizationTests {
    @Suite("Authorization: jwt accepts")
    struct JWTAcceptTests {
        @Test func validHS256TokenGivesSubjectRightsAndExpiry() async throws {
            let authorizer = try await jwt(hs256())
            let exp = now + 600
            let token = try await signHMAC(Claims(exp: exp, subscribe: ["/scores/**", "/news/*"], publish: ["/chat/*"]))
            let id = try identity(await authenticate(authorizer, token))
            #expect(id.subject == "alice")
            #expect(id.expiresAt == exp + 30)  // the default leeway: the connection keeps the token as long
            #expect(id.rights == (try rights(["/scores/**", "/news/*"], ["/chat/*"])))
            #expect(id.rights.allows(.subscribe, "/scores/nba/live"))
            #expect(!id.rights.allows(.publish, "/scores/nba"))
        }

        @Test func noRightsClaimsMeanNoRights() async throws {
            let token = try await signHMAC(Claims(subscribe: nil, publish: nil))
            let id = try identity(await authenticate(try await jwt(hs256()), token))
            #expect(id.rights == .none)
        }

        @Test func aMissingSubjectStillIdentifies() async throws {
            let token = try await signHMAC(Claims(sub: nil))
            let id = try identity(await authenticate(try await jwt(hs256()), token))
            #expect(!id.subject.isEmpty)
            #expect(id.subject != "anonymous")
        }

        @Test(arguments: ["HS256", "HS384", "HS512", "RS256", "ES256"])
        func everyAlgorithm(_ alg: String) async throws {
            let claims = Claims(sub: "user-\(alg)")
            let options: [String: Any]
            let token: String
            switch alg {
            case "HS384":
                options = ["keys": [["alg": alg, "secret": longSecret]]]
                token = try await signHMAC(claims, secret: longSecret, digest: .sha384)
            case "HS512":
                options = ["keys": [["alg": alg, "secret": longSecret]]]
                token = try await signHMAC(claims, secret: longSecret, digest: .sha512)
            case "RS256":
                options = ["keys": [["alg": alg, "public_key_pem": rsaPublicKeyPEM]]]
                token = try await signRSA(claims)
            case "ES256":
                let key = ES256PrivateKey()
                options = ["keys": [["alg": alg, "public_key_pem": key.publicKey.pemRepresentation]]]
                token = try await signES256(claims, key: key)
            default:
                options = hs256()
                token = try await signHMAC(claims)
            }
            #expect(try decodedHeader(token)["alg"] as? String == alg)
            let authorizer = try await jwt(options)
            #expect(try identity(await authenticate(authorizer, token)).subject == "user-\(alg)")
        }

        @Test func publicKeyFromAFile() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("key.pem")
            try write(rsaPublicKeyPEM, to: file, modified: Date())
            let authorizer = try await jwt(["keys": [["alg": "RS256", "public_key_file": file.path]]])
            #expect(try identity(await authenticate(authorizer, try await signRSA(Claims()))).subject == "alice")
        }

        @Test func aSecretOfExactly32BytesIsAccepted() async throws {
            let secret32 = String(repeating: "k", count: 32)
            let authorizer = try await jwt(hs256(secret: secret32))
            _ = try identity(await authenticate(authorizer, try await signHMAC(Claims(), secret: secret32)))
        }

        @Test func customClaimNames() async throws {
            let authorizer = try await jwt(hs256(["subscribe_claim": "sg_read", "publish_claim": "sg_write"]))
            let token = try await signHMAC(TokenClaims(values: [
                "sub": .string("carol"),
                "exp": .number(now + 600),
                "sg_read": .array([.string("/feeds/**"), .number(3), .string("/x")]),
                "sg_write": .string("/inbox/*"),
                "subscribe": .array([.string("/**")]),
                "publish": .array([.string("/**")]),
            ]))
            let id = try identity(await authenticate(authorizer, token))
            #expect(id.subject == "carol")
            #expect(id.rights == (try rights(["/feeds/**", "/x"], ["/inbox/*"])))
            #expect(!id.rights.allows(.subscribe, "/other"))
        }

        @Test func aRightsClaimMayBeOneString() async throws {
            let token = try await signHMAC(TokenClaims(values: [
                "sub": .string("dave"), "exp": .number(now + 600), "subscribe": .string("/one/*"),
            ]))
            let id = try identity(await authenticate(try await jwt(hs256()), token))
            #expect(id.rights == (try rights(["/one/*"])))
        }

        @Test func kidSelectsTheKey() async throws {
            let authorizer = try await jwt(["keys": [
                ["alg": "HS256", "secret": secret, "kid": "k1"],
                ["alg": "HS256", "secret": otherSecret, "kid": "k2"],
                ["alg": "RS256", "public_key_pem": rsaPublicKeyPEM, "kid": "rsa"],
            ]])
            #expect(try identity(await authenticate(authorizer, try await signHMAC(Claims(sub: "one"), kid: "k1")))
                .subject == "one")
            #expect(try identity(await authenticate(
                authorizer, try await signHMAC(Claims(sub: "two"), secret: otherSecret, kid: "k2"))).subject == "two")
            #expect(try identity(await authenticate(authorizer, try await signRSA(Claims(sub: "three"), kid: "rsa")))
                .subject == "three")
            // Each key verifies only what it signed.
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(), secret: otherSecret, kid: "k1")))
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(), secret: secret, kid: "k2")))
        }

        @Test func issuerAndAudienceWhenTheyMatch() async throws {
            let authorizer = try await jwt(hs256(["issuer": "https://idp.example", "audience": "streamgate"]))
            _ = try identity(await authenticate(authorizer, try await signHMAC(
                Claims(iss: "https://idp.example", aud: .one("streamgate")))))
            _ = try identity(await authenticate(authorizer, try await signHMAC(
                Claims(iss: "https://idp.example", aud: .many(["other", "streamgate"])))))
        }
    }
}

// MARK: - jwt: refused and ignored tokens

extension AuthorizationTests {
    @Suite("Authorization: jwt refuses")
    struct JWTRefuseTests {
        @Test func tamperedPayloadIsDenied() async throws {
            let authorizer = try await jwt(hs256())
            let token = try await signHMAC(Claims(subscribe: ["/mine/**"]))
            let p = try parts(token)
            var claims = try #require(try JSONSerialization.jsonObject(with: base64URLDecode(p[1])) as? [String: Any])
            #expect(claims["subscribe"] as? [String] == ["/mine/**"])
            claims["subscribe"] = ["/**"]
            let forged = "\(p[0]).\(base64URL(try JSONSerialization.data(withJSONObject: claims))).\(p[2])"
            _ = try identity(await authenticate(authorizer, token))
            let reason = try denial(await authenticate(authorizer, forged))
            #expect(reason.contains("invalid token"), "\(reason)")
        }

        @Test func everyFlippedPayloadByteIsDenied() async throws {
            let authorizer = try await jwt(hs256())
            let token = try await signHMAC(Claims())
            let p = try parts(token)
            var payload = [UInt8](try base64URLDecode(p[1]))
            for i in stride(from: 0, to: payload.count, by: 7) {
                payload[i] ^= 0x01
                let forged = "\(p[0]).\(base64URL(Data(payload))).\(p[2])"
                payload[i] ^= 0x01
                let result = await authenticate(authorizer, forged)
                if case .identified = result { Issue.record("accepted a payload with byte \(i) flipped") }
            }
        }

        @Test func tamperedSignatureIsDenied() async throws {
            let authorizer = try await jwt(hs256())
            let token = try await signHMAC(Claims())
            let p = try parts(token)
            var signature = [UInt8](try base64URLDecode(p[2]))
            signature[signature.count / 2] ^= 0x80
            let forged = "\(p[0]).\(p[1]).\(base64URL(Data(signature)))"
            _ = try denial(await authenticate(authorizer, forged))
            _ = try denial(await authenticate(authorizer, "\(p[0]).\(p[1])."))
        }

        @Test func wrongSecretIsDenied() async throws {
            let reason = try denial(await authenticate(try await jwt(hs256()), try await signHMAC(Claims(), secret: otherSecret)))
            #expect(reason.contains("invalid token"))
        }

        @Test func anotherRSAKeyIsDenied() async throws {
            let authorizer = try await jwt(["keys": [["alg": "ES256", "public_key_pem": ES256PrivateKey().publicKey.pemRepresentation]]])
            _ = try denial(await authenticate(authorizer, try await signES256(Claims(), key: ES256PrivateKey())))
        }

        @Test func expiredBeyondLeewayIsDenied() async throws {
            let authorizer = try await jwt(hs256(["leeway_seconds": 30]))
            let exp = now - 60
            let reason = try denial(await authenticate(authorizer, try await signHMAC(Claims(exp: exp))))
            #expect(reason.contains("expired"), "\(reason)")
            #expect(reason.contains("\(Int64(exp))"), "\(reason)")
        }

        @Test func expiredWithinLeewayIsIdentified() async throws {
            let authorizer = try await jwt(hs256(["leeway_seconds": 30]))
            let exp = now - 10
            let id = try identity(await authenticate(authorizer, try await signHMAC(Claims(exp: exp))))
            // Still within the leeway: the connection may use it until exp + leeway.
            #expect(id.expiresAt == exp + 30)
            #expect(AccessPolicy.refusal(of: .subscribe, to: "/x", by: id, now: now) != nil)  // no rights, but...
            #expect(AccessPolicy.refusal(of: .subscribe, to: "/x", by: id, now: now)?.code != .tokenExpired)
        }

        @Test func zeroLeewayDeniesAJustExpiredToken() async throws {
            let authorizer = try await jwt(hs256(["leeway_seconds": 0]))
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(exp: now - 2))))
        }

        @Test func notYetValidIsDenied() async throws {
            let authorizer = try await jwt(hs256(["leeway_seconds": 30]))
            let nbf = now + 120
            let reason = try denial(await authenticate(authorizer, try await signHMAC(Claims(nbf: nbf))))
            #expect(reason.contains("not valid before \(Int64(nbf))"), "\(reason)")
            _ = try identity(await authenticate(authorizer, try await signHMAC(Claims(nbf: now + 10))))
            _ = try identity(await authenticate(authorizer, try await signHMAC(Claims(nbf: now - 10))))
        }

        @Test func wrongOrMissingIssuerIsDenied() async throws {
            let authorizer = try await jwt(hs256(["issuer": "https://idp.example"]))
            let wrong = try denial(await authenticate(authorizer, try await signHMAC(Claims(iss: "https://evil.example"))))
            #expect(wrong.contains("https://idp.example"), "\(wrong)")
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(iss: nil))))
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(iss: "https://idp.example/"))))
        }

        @Test func wrongOrMissingAudienceIsDenied() async throws {
            let authorizer = try await jwt(hs256(["audience": "streamgate"]))
            let wrong = try denial(await authenticate(authorizer, try await signHMAC(Claims(aud: .one("other")))))
            #expect(wrong.contains("'streamgate'"), "\(wrong)")
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(aud: .many(["a", "b"])))))
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(aud: .many([])))))
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(aud: nil))))
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(aud: .one("streamgate2")))))
        }

        @Test func issuerAndAudienceAreIgnoredWhenNotConfigured() async throws {
            let authorizer = try await jwt(hs256())
            _ = try identity(await authenticate(authorizer, try await signHMAC(Claims(iss: "anyone", aud: .one("any")))))
        }

        @Test func missingExpiry() async throws {
            let token = try await signHMAC(Claims(exp: nil))
            let reason = try denial(await authenticate(try await jwt(hs256()), token))
            #expect(reason.contains("'exp'"), "\(reason)")
            _ = try denial(await authenticate(try await jwt(hs256(["require_exp": true])), token))
            let id = try identity(await authenticate(try await jwt(hs256(["require_exp": false])), token))
            #expect(id.expiresAt == nil)
        }

        @Test func expiryIsCheckedEvenWhenNotRequired() async throws {
            let authorizer = try await jwt(hs256(["require_exp": false, "leeway_seconds": 0]))
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(exp: now - 5))))
        }

        @Test func algNoneIsDenied() async throws {
            let authorizer = try await jwt(hs256())
            let payload = try json(["sub": "mallory", "exp": now + 600, "subscribe": ["/**"]])
            for header in [#"{"alg":"none"}"#, #"{"alg":"none","typ":"JWT"}"#, #"{"alg":"None"}"#, #"{"typ":"JWT"}"#] {
                let token = rawToken(header: header, payload: payload)
                let reason = try denial(await authenticate(authorizer, token))
                #expect(reason.contains("algorithm"), "\(header): \(reason)")
            }
            let reason = try denial(await authenticate(authorizer, rawToken(header: #"{"alg":"none"}"#, payload: payload)))
            #expect(reason.contains("'none'"), "\(reason)")
        }

        @Test func hmacSignedWithThePublicKeyIsDenied() async throws {
            let authorizer = try await jwt(["keys": [["alg": "RS256", "public_key_pem": rsaPublicKeyPEM]]])
            for secretText in [rsaPublicKeyPEM, rsaPublicKeyPEM + "\n"] {
                let token = try await signHMAC(Claims(sub: "mallory", subscribe: ["/**"]), secret: secretText)
                #expect(try decodedHeader(token)["alg"] as? String == "HS256")
                let reason = try denial(await authenticate(authorizer, token))
                #expect(reason.contains("HS256"), "\(reason)")
            }
            // The real key still works.
            _ = try identity(await authenticate(authorizer, try await signRSA(Claims())))
        }

        @Test func anotherAlgorithmThanTheKeysIsDeniedByName() async throws {
            let authorizer = try await jwt(hs256(secret: longSecret))
            let token = try await signHMAC(Claims(), secret: longSecret, digest: .sha512)
            let reason = try denial(await authenticate(authorizer, token))
            #expect(reason.contains("'HS512'"), "\(reason)")
            #expect(reason.contains("HS256"), "\(reason)")
        }

        @Test func aKeyIdNamesTheAlgorithmToo() async throws {
            let authorizer = try await jwt(["keys": [
                ["alg": "HS256", "secret": secret, "kid": "hmac"],
                ["alg": "RS256", "public_key_pem": rsaPublicKeyPEM, "kid": "rsa"],
            ]])
            // An HS256 token claiming the RSA key, signed with its PEM.
            let token = try await signHMAC(Claims(), secret: rsaPublicKeyPEM, kid: "rsa")
            let reason = try denial(await authenticate(authorizer, token))
            #expect(reason.contains("'HS256'") && reason.contains("RS256"), "\(reason)")
            // An RS256 token claiming the HMAC key.
            _ = try denial(await authenticate(authorizer, try await signRSA(Claims(), kid: "hmac")))
        }

        @Test func unknownKeyIdIsDenied() async throws {
            let authorizer = try await jwt(["keys": [
                ["alg": "HS256", "secret": secret, "kid": "k1"],
                ["alg": "HS256", "secret": otherSecret, "kid": "k2"],
            ]])
            let reason = try denial(await authenticate(authorizer, try await signHMAC(Claims(), kid: "k3")))
            #expect(reason.contains("'k3'"), "\(reason)")
        }

        @Test func notAJWTIsLeftToTheNextAuthorizer() async throws {
            let authorizer = try await jwt(hs256())
            for token in ["abc", "a.b", "a.b.c.d", "not base64!.x.y", "e30", "W10.e30.", "bm90IGpzb24.e30.sig"] {
                #expect(await authenticate(authorizer, token) == .abstain, "\(token)")
            }
            #expect(await authenticate(authorizer, nil) == .abstain)
        }

        @Test func aJWTShapedTokenWithGarbageIsDenied() async throws {
            let authorizer = try await jwt(hs256())
            // The header reads as a JWT's: the token is this authorizer's to refuse.
            let token = base64URL(Data(#"{"alg":"HS256"}"#.utf8)) + ".!!!.???"
            _ = try denial(await authenticate(authorizer, token))
        }

        @Test func aBadPatternInTheClaimsIsDeniedNamingIt() async throws {
            let authorizer = try await jwt(hs256())
            let token = try await signHMAC(Claims(subscribe: ["/ok/**"], publish: ["chat/*"]))
            let reason = try denial(await authenticate(authorizer, token))
            #expect(reason.contains("'chat/*'"), "\(reason)")
            let star = try await signHMAC(Claims(subscribe: ["/sc*res"]))
            #expect(try denial(await authenticate(authorizer, star)).contains("'/sc*res'"))
        }
    }
}

// MARK: - jwt: claim checks at a given time

extension AuthorizationTests {
    @Suite("Authorization: jwt claim checks")
    struct JWTCheckTests {
        static func claims(_ values: [String: JSONValue]) -> TokenClaims {
            TokenClaims(values: values)
        }

        @Test func expiryBoundaryWithLeeway() async throws {
            let authorizer = try await jwt(hs256(["leeway_seconds": 30]))
            let c = Self.claims(["sub": .string("s"), "exp": .number(1_000)])
            #expect(try identity(authorizer.check(c, now: 1_000)).expiresAt == 1_030)
            _ = try identity(authorizer.check(c, now: 1_030))
            _ = try denial(authorizer.check(c, now: 1_030.5))
            _ = try denial(authorizer.check(c, now: 2_000))
        }

        @Test func notBeforeBoundaryWithLeeway() async throws {
            let authorizer = try await jwt(hs256(["leeway_seconds": 30]))
            let c = Self.claims(["exp": .number(5_000), "nbf": .number(1_000)])
            _ = try identity(authorizer.check(c, now: 970))
            _ = try denial(authorizer.check(c, now: 969.5))
            _ = try identity(authorizer.check(c, now: 1_000))
        }

        @Test func claimTimesFarOutsideInt64AreRefusedWithoutTrapping() async throws {
            let authorizer = try await jwt(hs256(["leeway_seconds": 0]))
            let expired = Self.claims(["exp": .number(-1e300)])
            #expect(try denial(authorizer.check(expired, now: 1_000)).contains("-1e+300"))
            let notYet = Self.claims(["exp": .number(5_000), "nbf": .number(1e300)])
            #expect(try denial(authorizer.check(notYet, now: 1_000)).contains("1e+300"))
            let forever = Self.claims(["exp": .number(1e300)])
            #expect(try identity(authorizer.check(forever, now: 1_000)).expiresAt == Identity.expiryBound)
        }

        @Test func zeroLeeway() async throws {
            let authorizer = try await jwt(hs256(["leeway_seconds": 0]))
            let c = Self.claims(["exp": .number(1_000), "nbf": .number(900)])
            _ = try identity(authorizer.check(c, now: 1_000))
            _ = try denial(authorizer.check(c, now: 1_000.001))
            _ = try denial(authorizer.check(c, now: 899.999))
            _ = try identity(authorizer.check(c, now: 900))
        }

        @Test func audienceForms() async throws {
            let authorizer = try await jwt(hs256(["audience": "sg", "issuer": "idp"]))
            let base: [String: JSONValue] = ["exp": .number(2_000), "iss": .string("idp")]
            func with(_ aud: JSONValue?) -> TokenClaims {
                var v = base
                v["aud"] = aud
                return TokenClaims(values: v)
            }
            _ = try identity(authorizer.check(with(.string("sg")), now: 1_000))
            _ = try identity(authorizer.check(with(.array([.string("x"), .string("sg")])), now: 1_000))
            _ = try denial(authorizer.check(with(.array([.string("x")])), now: 1_000))
            _ = try denial(authorizer.check(with(.number(1)), now: 1_000))
            _ = try denial(authorizer.check(with(nil), now: 1_000))
            var wrongIssuer = base
            wrongIssuer["aud"] = .string("sg")
            wrongIssuer["iss"] = .array([.string("idp")])
            _ = try denial(authorizer.check(TokenClaims(values: wrongIssuer), now: 1_000))
        }
    }
}

// MARK: - jwt: JWKS files

extension AuthorizationTests {
    @Suite("Authorization: jwt JWKS file")
    struct JWKSTests {
        @Test func keysFromAJWKSFile() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("jwks.json")
            let ec = ES256PrivateKey()
            try write(jwks([rsaJWK(kid: "r1"), try ecJWK(ec, kid: "e1")]), to: file, modified: Date())
            let authorizer = try await jwt(["jwks_file": file.path])
            #expect(try identity(await authenticate(authorizer, try await signJWKSRSA(Claims(sub: "r"), kid: "r1")))
                .subject == "r")
            #expect(try identity(await authenticate(authorizer, try await signES256(Claims(sub: "e"), key: ec, kid: "e1")))
                .subject == "e")
            // A key of the set does not verify what another key signed.
            _ = try denial(await authenticate(authorizer, try await signES256(Claims(), key: ES256PrivateKey(), kid: "e1")))
            _ = try denial(await authenticate(authorizer, try await signES256(Claims(), key: ec, kid: "nope")))
            // Nor another algorithm claiming its key id.
            _ = try denial(await authenticate(authorizer, try await signHMAC(Claims(), secret: rsaPublicKeyPEM, kid: "r1")))
        }

        @Test func jwksKeysWithoutAlgUseTheirTypesAlgorithm() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("jwks.json")
            let ec = ES256PrivateKey()
            try write(jwks([rsaJWK(kid: "r1", alg: nil), try ecJWK(ec, kid: "e1", alg: nil)]), to: file, modified: Date())
            let authorizer = try await jwt(["jwks_file": file.path])
            _ = try identity(await authenticate(authorizer, try await signJWKSRSA(Claims(), kid: "r1")))
            _ = try identity(await authenticate(authorizer, try await signES256(Claims(), key: ec, kid: "e1")))
        }

        @Test func configuredKeysAndAJWKSFileTogether() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("jwks.json")
            try write(jwks([rsaJWK(kid: "r1")]), to: file, modified: Date())
            let authorizer = try await jwt(["jwks_file": file.path, "keys": [["alg": "HS256", "secret": secret, "kid": "h"]]])
            _ = try identity(await authenticate(authorizer, try await signJWKSRSA(Claims(), kid: "r1")))
            _ = try identity(await authenticate(authorizer, try await signHMAC(Claims(), kid: "h")))
        }

        @Test func aRewrittenFileTakesEffectAfterTheCheckInterval() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("jwks.json")
            let first = ES256PrivateKey()
            let second = ES256PrivateKey()
            let start = Date()
            try write(jwks([try ecJWK(first, kid: "e1")]), to: file, modified: start)
            let logger = CollectingLogger()
            let authorizer = try await jwt(["jwks_file": file.path], logger: logger)
            let oldToken = try await signES256(Claims(sub: "old"), key: first, kid: "e1")
            let newToken = try await signES256(Claims(sub: "new"), key: second, kid: "e2")
            _ = try identity(await authenticate(authorizer, oldToken))
            let revision = await authorizer.revision()

            try write(jwks([try ecJWK(second, kid: "e2")]), to: file, modified: start.addingTimeInterval(10))
            // Checked at most once a second: not seen yet.
            _ = try identity(await authenticate(authorizer, oldToken))

            try await waitForReloadInterval()
            #expect(try identity(await authenticate(authorizer, newToken)).subject == "new")
            let reason = try denial(await authenticate(authorizer, oldToken))
            #expect(reason.contains("'e1'"), "\(reason)")
            #expect(await authorizer.revision() > revision)
            #expect(logger.messages.contains { $0.level == .info && $0.message.contains(file.path) })
        }

        @Test func anUnchangedFileIsNotReloaded() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("jwks.json")
            try write(jwks([rsaJWK(kid: "r1")]), to: file, modified: Date())
            let authorizer = try await jwt(["jwks_file": file.path])
            let revision = await authorizer.revision()
            try await waitForReloadInterval()
            #expect(await authorizer.revision() == revision)
            _ = try identity(await authenticate(authorizer, try await signJWKSRSA(Claims(), kid: "r1")))
        }

        @Test func withoutAJWKSFileTheRevisionNeverMoves() async throws {
            let authorizer = try await jwt(hs256())
            let revision = await authorizer.revision()
            _ = try identity(await authenticate(authorizer, try await signHMAC(Claims())))
            #expect(await authorizer.revision() == revision)
        }

        @Test func aBrokenRewriteKeepsThePreviousKeys() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("jwks.json")
            let key = ES256PrivateKey()
            let start = Date()
            try write(jwks([try ecJWK(key, kid: "e1")]), to: file, modified: start)
            let logger = CollectingLogger()
            let authorizer = try await jwt(["jwks_file": file.path], logger: logger)
            let token = try await signES256(Claims(), key: key, kid: "e1")
            _ = try identity(await authenticate(authorizer, token))
            let revision = await authorizer.revision()

            try write(#"{"keys": [{"kty": "EC", "#, to: file, modified: start.addingTimeInterval(10))
            try await waitForReloadInterval()
            _ = try identity(await authenticate(authorizer, token))
            #expect(await authorizer.revision() == revision)
            #expect(logger.messages.contains { $0.level == .error && $0.message.contains("keeping the previous keys") })
        }
    }
}

// MARK: - jwt: configuration errors

extension AuthorizationTests {
    @Suite("Authorization: jwt configuration")
    struct JWTConfigurationTests {
        @Test func keysOrJWKSAreRequired() async throws {
            let none = try #require(await jwtError([:]))
            #expect(none.key == "authorization.options.keys", "\(none)")
            #expect(none.description.contains("jwks_file"), "\(none)")
            let empty = try #require(await jwtError(["keys": []]))
            #expect(empty.key == "authorization.options.keys", "\(empty)")
            let null = try #require(await jwtError(["keys": NSNull()]))
            #expect(null.key == "authorization.options.keys", "\(null)")
        }

        @Test func keysMustBeAnArrayOfObjects() async throws {
            let object = try #require(await jwtError(["keys": ["alg": "HS256", "secret": secret]]))
            #expect(object.key == "authorization.options.keys", "\(object)")
            let item = try #require(await jwtError(["keys": ["HS256"]]))
            #expect(item.key == "authorization.options.keys[0]", "\(item)")
        }

        @Test func algorithmIsNamed() async throws {
            let bad = try #require(await jwtError(["keys": [["alg": "HS256", "secret": secret], ["alg": "RS512", "public_key_pem": rsaPublicKeyPEM]]]))
            #expect(bad.key == "authorization.options.keys[1].alg", "\(bad)")
            #expect(bad.value == "\"RS512\"")
            #expect(bad.expected.contains("ES256"))
            for alg in ["none", "hs256", ""] {
                let error = try #require(await jwtError(["keys": [["alg": alg, "secret": secret]]]))
                #expect(error.key == "authorization.options.keys[0].alg", "\(error)")
            }
            let missing = try #require(await jwtError(["keys": [["secret": secret]]]))
            #expect(missing.key == "authorization.options.keys[0].alg", "\(missing)")
            #expect(missing.value == nil)
        }

        @Test func shortSecrets() async throws {
            for alg in ["HS256", "HS384", "HS512"] {
                let short = try #require(await jwtError(["keys": [["alg": alg, "secret": String(repeating: "s", count: 31)]]]))
                #expect(short.key == "authorization.options.keys[0].secret", "\(short)")
                #expect(short.value == "(31 bytes)", "\(short)")
                #expect(!short.description.contains("sssss"), "the secret must not be printed: \(short)")
            }
            // RFC 7518 3.2: HS384 and HS512 need 48 and 64 bytes.
            for (alg, minimum) in [("HS384", 48), ("HS512", 64)] {
                let short = try #require(await jwtError(["keys": [["alg": alg, "secret": String(repeating: "s", count: minimum - 1)]]]))
                #expect(short.key == "authorization.options.keys[0].secret" && short.description.contains("\(minimum) bytes"), "\(short)")
                #expect(await jwtError(["keys": [["alg": alg, "secret": String(repeating: "s", count: minimum)]]]) == nil)
            }
            let missing = try #require(await jwtError(["keys": [["alg": "HS256"]]]))
            #expect(missing.key == "authorization.options.keys[0].secret", "\(missing)")
            // Bytes, not characters: 11 three-byte characters are 33 bytes.
            #expect(await jwtError(["keys": [["alg": "HS256", "secret": String(repeating: "€", count: 11)]]]) == nil)
        }

        @Test func publicKeys() async throws {
            for alg in ["RS256", "ES256"] {
                let missing = try #require(await jwtError(["keys": [["alg": alg]]]))
                #expect(missing.key == "authorization.options.keys[0].public_key_pem", "\(missing)")
                let unreadable = try #require(await jwtError(["keys": [["alg": alg, "public_key_file": "/nonexistent/key.pem"]]]))
                #expect(unreadable.key == "authorization.options.keys[0].public_key_file", "\(unreadable)")
                #expect(unreadable.value == "\"/nonexistent/key.pem\"")
            }
        }

        @Test func badPEMContentNamesTheKey() async throws {
            let garbage = try #require(await jwtError(["keys": [["alg": "RS256", "public_key_pem": "not a pem"]]]))
            #expect(garbage.key == "authorization.options.keys[0]", "\(garbage)")
            #expect(garbage.description.contains("RS256"), "\(garbage)")
            // An EC key where an RSA key is expected, and the other way round.
            let ecPEM = ES256PrivateKey().publicKey.pemRepresentation
            let swapped = try #require(await jwtError(["keys": [
                ["alg": "HS256", "secret": secret],
                ["alg": "RS256", "public_key_pem": ecPEM],
            ]]))
            #expect(swapped.key == "authorization.options.keys[1]", "\(swapped)")
            let swapped2 = try #require(await jwtError(["keys": [["alg": "ES256", "public_key_pem": rsaPublicKeyPEM]]]))
            #expect(swapped2.key == "authorization.options.keys[0]", "\(swapped2)")
            #expect(swapped2.description.contains("ES256"), "\(swapped2)")
        }

        @Test func unknownKeysInAKeyEntry() async throws {
            let typo = try #require(await jwtError(["keys": [["alg": "HS256", "secret": secret, "kidd": "a"]]]))
            #expect(typo.key == "authorization.options.keys[0].kidd", "\(typo)")
            #expect(typo.description.contains("unknown key"), "\(typo)")
            // Keys of the other kind of algorithm are not read either.
            let pemForHMAC = try #require(await jwtError(["keys": [["alg": "HS256", "secret": secret, "public_key_pem": rsaPublicKeyPEM]]]))
            #expect(pemForHMAC.key == "authorization.options.keys[0].public_key_pem", "\(pemForHMAC)")
            let secretForRSA = try #require(await jwtError(["keys": [["alg": "RS256", "public_key_pem": rsaPublicKeyPEM, "secret": secret]]]))
            #expect(secretForRSA.key == "authorization.options.keys[0].secret", "\(secretForRSA)")
        }

        @Test func topLevelOptions() async throws {
            let typo = try #require(await jwtError(hs256(["audiences": "x"])))
            #expect(typo.key == "authorization.options.audiences", "\(typo)")
            for leeway in [-1, 3_601] {
                let error = try #require(await jwtError(hs256(["leeway_seconds": leeway])))
                #expect(error.key == "authorization.options.leeway_seconds", "\(error)")
            }
            let fractional = try #require(await jwtError(hs256(["leeway_seconds": 1.5])))
            #expect(fractional.key == "authorization.options.leeway_seconds", "\(fractional)")
            let requireExp = try #require(await jwtError(hs256(["require_exp": "yes"])))
            #expect(requireExp.key == "authorization.options.require_exp", "\(requireExp)")
            let issuer = try #require(await jwtError(hs256(["issuer": 42])))
            #expect(issuer.key == "authorization.options.issuer", "\(issuer)")
            let claim = try #require(await jwtError(hs256(["subscribe_claim": ["a"]])))
            #expect(claim.key == "authorization.options.subscribe_claim", "\(claim)")
            #expect(await jwtError(hs256(["leeway_seconds": 0, "require_exp": false, "issuer": "i", "audience": "a",
                                    "subscribe_claim": "s", "publish_claim": "p"])) == nil)
        }

        @Test func unusableJWKSFiles() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let missing = try #require(await jwtError(["jwks_file": dir.appendingPathComponent("absent.json").path]))
            #expect(missing.key.hasSuffix("jwks_file"), "\(missing)")
            #expect(missing.description.contains("absent.json"), "\(missing)")

            let notJWKS = dir.appendingPathComponent("bad.json")
            try write(#"{"not": "a key set"}"#, to: notJWKS, modified: Date())
            let bad = try #require(await jwtError(["jwks_file": notJWKS.path]))
            #expect(bad.key.hasSuffix("jwks_file"), "\(bad)")
            #expect(bad.description.contains("bad.json"), "\(bad)")

            let noKid = dir.appendingPathComponent("nokid.json")
            var jwk = rsaJWK(kid: "x")
            jwk["kid"] = nil
            try write(jwks([jwk]), to: noKid, modified: Date())
            #expect(await jwtError(["jwks_file": noKid.path]) != nil)

            let type = try #require(await jwtError(["jwks_file": 1]))
            #expect(type.key == "authorization.options.jwks_file", "\(type)")
        }
    }
}

// MARK: - static-tokens

extension AuthorizationTests {
    @Suite("Authorization: static-tokens")
    struct StaticTokensTests {
        static let tokenA = "token-a-0123456789abcdef"
        static let tokenB = "token-b-0123456789abcdef"
        static let tokenC = "token-c-0123456789abcdef"

        @Test func identifiesWithRights() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            let future = now + 3_600
            try write(tokensFile([
                ["token": Self.tokenA, "subject": "scoreboard", "subscribe": ["/scores/**"], "publish": ["/chat/*"]],
                ["token": Self.tokenB, "subscribe": [], "expires_at": future],
            ]), to: file, modified: Date())
            let authorizer = try staticTokens(file: file.path)
            let a = try identity(await authenticate(authorizer, Self.tokenA))
            #expect(a == Identity(subject: "scoreboard", rights: try rights(["/scores/**"], ["/chat/*"]), expiresAt: nil))
            let b = try identity(await authenticate(authorizer, Self.tokenB))
            #expect(b.subject == "token-1")
            #expect(b.rights == .none)
            #expect(b.expiresAt == future)
        }

        @Test func unknownTokensAbstain() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            try write(tokensFile([["token": Self.tokenA, "subject": "s"]]), to: file, modified: Date())
            let authorizer = try staticTokens(file: file.path)
            for token in [Self.tokenB, String(Self.tokenA.dropLast()), Self.tokenA + "x", Self.tokenA.uppercased(),
                          " " + Self.tokenA, ""]
            {
                #expect(await authenticate(authorizer, token) == .abstain, "\(token)")
            }
            #expect(await authenticate(authorizer, nil) == .abstain)
        }

        @Test func expiredTokensAreDenied() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            try write(tokensFile([["token": Self.tokenA, "subject": "old-service", "expires_at": now - 10]]),
                      to: file, modified: Date())
            let reason = try denial(await authenticate(try staticTokens(file: file.path), Self.tokenA))
            #expect(reason.contains("'old-service'"), "\(reason)")
            #expect(reason.contains("expired"), "\(reason)")
        }

        @Test func aRewrittenFileTakesEffectAfterTheCheckInterval() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            let start = Date()
            try write(tokensFile([["token": Self.tokenA, "subject": "a"], ["token": Self.tokenB, "subject": "b"]]),
                      to: file, modified: start)
            let logger = CollectingLogger()
            let authorizer = try staticTokens(file: file.path, logger: logger)
            _ = try identity(await authenticate(authorizer, Self.tokenA))
            let revision = await authorizer.revision()

            // Revoke A, add C, change B's rights.
            try write(tokensFile([
                ["token": Self.tokenB, "subject": "b", "subscribe": ["/b/**"]],
                ["token": Self.tokenC, "subject": "c"],
            ]), to: file, modified: start.addingTimeInterval(10))
            // Checked at most once a second: not seen yet.
            _ = try identity(await authenticate(authorizer, Self.tokenA))
            #expect(await authenticate(authorizer, Self.tokenC) == .abstain)

            try await waitForReloadInterval()
            #expect(await authenticate(authorizer, Self.tokenA) == .abstain)
            #expect(try identity(await authenticate(authorizer, Self.tokenC)).subject == "c")
            #expect(try identity(await authenticate(authorizer, Self.tokenB)).rights == (try rights(["/b/**"])))
            #expect(await authorizer.revision() > revision)
            #expect(logger.messages.contains { $0.level == .info && $0.message.contains("reloaded") })
        }

        @Test func revisionNoticesTheRewriteWithoutAnAuthentication() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            let start = Date()
            try write(tokensFile([["token": Self.tokenA]]), to: file, modified: start)
            let authorizer = try staticTokens(file: file.path)
            let revision = await authorizer.revision()
            #expect(await authorizer.revision() == revision)
            try write(tokensFile([["token": Self.tokenB]]), to: file, modified: start.addingTimeInterval(10))
            try await waitForReloadInterval()
            #expect(await authorizer.revision() > revision)
            #expect(await authenticate(authorizer, Self.tokenA) == .abstain)
        }

        @Test func anUnchangedFileIsNotReloaded() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            try write(tokensFile([["token": Self.tokenA]]), to: file, modified: Date())
            let authorizer = try staticTokens(file: file.path)
            let revision = await authorizer.revision()
            try await waitForReloadInterval()
            #expect(await authorizer.revision() == revision)
            _ = try identity(await authenticate(authorizer, Self.tokenA))
        }

        /// The whole path of a connection: its header, the chain, the rights.
        @Test func fromTheUpgradeRequestToARefusal() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            try write(tokensFile([["token": Self.tokenA, "subject": "svc", "subscribe": ["/svc/*"]]]), to: file,
                      modified: Date())
            let chain = AuthorizerChain(authorizers: [("static-tokens", try staticTokens(file: file.path))])
            for info in [connection(authorization: "Bearer \(Self.tokenA)"),
                         connection(query: "x=1&access_token=\(Self.tokenA)")]
            {
                let id = try identity(await chain.decide(Credentials(token: AuthorizerChain.token(of: info),
                                                                            connection: info)).result)
                #expect(id.subject == "svc")
                #expect(AccessPolicy.refusal(of: .subscribe, to: "/svc/a", by: id) == nil)
                #expect(AccessPolicy.refusal(of: .subscribe, to: "/svc/a/b", by: id)?.code == .forbidden)
                #expect(AccessPolicy.refusal(of: .publish, to: "/svc/a", by: id)?.code == .forbidden)
            }
        }

        @Test func aBrokenRewriteKeepsThePreviousTokens() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            let start = Date()
            try write(tokensFile([["token": Self.tokenA, "subject": "a"]]), to: file, modified: start)
            let logger = CollectingLogger()
            let authorizer = try staticTokens(file: file.path, logger: logger)
            _ = try identity(await authenticate(authorizer, Self.tokenA))
            let revision = await authorizer.revision()

            try write(tokensFile([["token": Self.tokenB], ["token": "short"]]), to: file,
                      modified: start.addingTimeInterval(10))
            try await waitForReloadInterval()
            _ = try identity(await authenticate(authorizer, Self.tokenA))
            #expect(await authenticate(authorizer, Self.tokenB) == .abstain)
            #expect(await authorizer.revision() == revision)
            #expect(logger.messages.contains { $0.level == .error && $0.message.contains("tokens[1].token") })

            // A deleted file keeps them too.
            try FileManager.default.removeItem(at: file)
            try await waitForReloadInterval()
            _ = try identity(await authenticate(authorizer, Self.tokenA))
        }

        @Test func fileErrorsNameTheFile() throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")

            try write(tokensFile([["token": Self.tokenA], ["token": "fifteen-chars!!"]]), to: file, modified: Date())
            let short = try #require(staticTokensError(["file": file.path]))
            #expect(short.key == "authorization.options.file", "\(short)")
            #expect(short.description.contains(file.path), "\(short)")
            #expect(short.description.contains("tokens[1].token"), "\(short)")

            try write(tokensFile([["subject": "no token"]]), to: file, modified: Date())
            let missingToken = try #require(staticTokensError(["file": file.path]))
            #expect(missingToken.description.contains("tokens[0].token"), "\(missingToken)")

            try write(tokensFile([["token": Self.tokenA, "publish": ["/ok", "bad/pattern"]]]), to: file, modified: Date())
            let pattern = try #require(staticTokensError(["file": file.path]))
            #expect(pattern.key == "authorization.options.file", "\(pattern)")
            #expect(pattern.description.contains("'bad/pattern'"), "\(pattern)")

            for text in ["not json", "[]", #"{"tokens": {}}"#, #"{"token": []}"#] {
                try write(text, to: file, modified: Date())
                let shape = try #require(staticTokensError(["file": file.path]), "\(text)")
                #expect(shape.key == "authorization.options.file", "\(shape)")
            }

            let absent = try #require(staticTokensError(["file": dir.appendingPathComponent("absent.json").path]))
            #expect(absent.key == "authorization.options.file", "\(absent)")
            #expect(absent.description.contains("absent.json"), "\(absent)")
        }

        @Test func options() throws {
            let missing = try #require(staticTokensError([:]))
            #expect(missing.key == "authorization.options.file", "\(missing)")
            #expect(missing.value == nil)
            let typo = try #require(staticTokensError(["file": "/x", "files": "/y"]))
            #expect(typo.key == "authorization.options.files", "\(typo)")
            let type = try #require(staticTokensError(["file": 3]))
            #expect(type.key == "authorization.options.file", "\(type)")
        }

        @Test func anEmptyTokenListIsAccepted() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            try write(tokensFile([]), to: file, modified: Date())
            #expect(await authenticate(try staticTokens(file: file.path), Self.tokenA) == .abstain)
        }
    }
}

// MARK: - Gateway configuration

extension AuthorizationTests {
    @Suite("Authorization: configuration section")
    struct ConfigurationSectionTests {
        @Test func oneObject() async throws {
            let c = try gateway(#"{"plugin": "jwt", "options": {"audience": "x"}}"#)
            #expect(c.authorization.map(\.name) == ["jwt"])
            #expect(c.authorization.map(\.key) == ["authorization"])
            #expect(c.authorization[0].options.path == "authorization.options")
            #expect(c.authorization[0].options.contains("audience"))
        }

        @Test func anArrayIsParsedInOrder() async throws {
            let c = try gateway("""
                [{"plugin": "static-tokens", "options": {"file": "/t.json"}},
                 {"plugin": "jwt", "options": {"audience": "sg"}},
                 {"plugin": "allow-all"}]
                """)
            #expect(c.authorization.map(\.name) == ["static-tokens", "jwt", "allow-all"])
            #expect(c.authorization.map(\.key) == ["authorization[0]", "authorization[1]", "authorization[2]"])
            #expect(c.authorization.map(\.options.path)
                == ["authorization[0].options", "authorization[1].options", "authorization[2].options"])
            #expect(c.authorization[0].options.contains("file"))
            #expect(!c.authorization[0].options.contains("audience"))
            #expect(c.authorization[1].options.contains("audience"))
            #expect(try c.authorization[1].options.string("audience") == "sg")
        }

        @Test func errorsInsideTheArrayNameTheItem() async throws {
            let missing = try #require(gatewayError(#"[{"plugin": "jwt"}, {"options": {}}]"#))
            #expect(missing.hasPrefix("authorization[1].plugin:"), "\(missing)")
            let notObject = try #require(gatewayError(#"[{"plugin": "jwt"}, 5]"#))
            #expect(notObject.hasPrefix("authorization[1]:"), "\(notObject)")
            let typo = try #require(gatewayError(#"[{"plugin": "jwt", "option": {}}]"#))
            #expect(typo.hasPrefix("authorization[0].option:"), "\(typo)")
            let badOptions = try #require(gatewayError(#"[{"plugin": "jwt"}, {"plugin": "jwt", "options": []}]"#))
            #expect(badOptions.hasPrefix("authorization[1].options:"), "\(badOptions)")
            let badName = try #require(gatewayError(#"[{"plugin": 7}]"#))
            #expect(badName.hasPrefix("authorization[0].plugin:"), "\(badName)")
        }

        @Test func anEmptyArrayIsAnError() async throws {
            let message = try #require(gatewayError("[]"))
            #expect(message.hasPrefix("authorization:"), "\(message)")
            #expect(message.contains("at least one"), "\(message)")
        }

        @Test func aChainIsBuiltInOrder() async throws {
            let dir = try directory()
            defer { remove(dir) }
            let file = dir.appendingPathComponent("tokens.json")
            try write(tokensFile([["token": "service-token-0123456789"]]), to: file, modified: Date())
            let chain = try await pluginSet("""
                [{"plugin": "jwt", "options": {"keys": [{"alg": "HS256", "secret": "\(secret)"}]}},
                 {"plugin": "static-tokens", "options": {"file": "\(file.path)"}}]
                """)
            #expect(chain.map(\.name) == ["jwt", "static-tokens"])
            #expect(chain[0].authorizer is JWTAuthorizer)
            #expect(chain[1].authorizer is StaticTokensAuthorizer)
        }

        @Test func pluginErrorsNameTheItem() async throws {
            let options = try #require(await pluginSetError("""
                [{"plugin": "jwt", "options": {"keys": [{"alg": "HS256", "secret": "\(secret)"}]}},
                 {"plugin": "static-tokens", "options": {}}]
                """))
            #expect(options.hasPrefix("authorization[1].options.file:"), "\(options)")
            let plugin = try #require(await pluginSetError(#"[{"plugin": "allow-all"}, {"plugin": "nope"}]"#))
            #expect(plugin.hasPrefix("authorization[1].plugin:"), "\(plugin)")
            #expect(plugin.contains("\"static-tokens\""), "\(plugin)")
            let key = try #require(await pluginSetError(#"[{"plugin": "jwt", "options": {"keys": [{"alg": "HS256", "secret": "short"}]}}]"#))
            #expect(key.hasPrefix("authorization[0].options.keys[0].secret:"), "\(key)")
        }
    }
}
