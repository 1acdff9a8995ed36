import StreamgatePluginAPI

/// The plugin library's entry point: the gateway calls it once, after
/// loading the file, to learn the factories it offers.
@_cdecl("streamgate_plugin_register")
public func streamgatePluginRegister(_ entry: UnsafeMutableRawPointer) -> Int32 {
    PluginEntryPoint.register(entry) { registrar in
        registrar.register(authorizer: ApiKeyAuthorizerFactory())
    }
}

/// `"authorization": {"plugin": "api-key", "options": {"keys": {"<key>":
/// {"subject": "...", "subscribe": ["/scores/**"], "publish": []}},
/// "header": "X-API-Key", "cookie": "sg_key"}}`: the key is read from the
/// header (default `X-API-Key`), else from the cookie when one is named
/// (a browser cannot set headers on a WebSocket, but sends its cookies).
public struct ApiKeyAuthorizerFactory: AuthorizerFactory {
    public let name = "api-key"

    public init() {}

    public func makeAuthorizer(options: ConfigSection, context: PluginContext) throws -> any Authorizer {
        guard case .object(let entries)? = options.raw("keys"), !entries.isEmpty else {
            throw ConfigurationError(
                key: options.keyPath("keys"), value: options.raw("keys")?.description,
                expected: "an object of API keys, each {\"subject\": ..., \"subscribe\": [...], \"publish\": [...]}")
        }
        var identities: [String: Identity] = [:]
        for (key, value) in entries {
            let entry = try ConfigSection(path: "\(options.keyPath("keys")).\(key.prefix(4))…", value: value)
            let subject = try entry.string("subject", default: "api-key-\(key.prefix(4))")
            let subscribe = try entry.stringArray("subscribe") ?? []
            let publish = try entry.stringArray("publish") ?? []
            let rights: Rights
            do {
                rights = try Rights(subscribePatterns: subscribe, publishPatterns: publish)
            } catch {
                throw ConfigurationError(key: entry.path, problem: error.reason)
            }
            try entry.finish()
            identities[key] = Identity(subject: subject, rights: rights, expiresAt: nil)
        }
        let header = try options.string("header", default: "X-API-Key")
        let cookie = try options.string("cookie", default: "")
        try options.finish()
        context.logger.log(.info, "api-key authorizer: \(identities.count) keys")
        return ApiKeyAuthorizer(identities: identities, header: header, cookie: cookie.isEmpty ? nil : cookie)
    }
}

/// Identifies a connection by the API key in its header (or cookie); a
/// connection without one is left to the next authorizer.
struct ApiKeyAuthorizer: Authorizer {
    let identities: [String: Identity]
    let header: String
    let cookie: String?

    func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        guard let key = credentials.headers[header] ?? cookie.flatMap({ credentials.cookies[$0] }) else { return .abstain }
        guard let identity = identities[key] else { return .denied(reason: "unknown API key") }
        return .identified(identity)
    }
}
