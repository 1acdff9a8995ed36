import StreamgatePluginAPI

/// Gives every connection, with or without credentials, every right. For
/// development only: the factory logs a warning at start-up so it is never
/// left on by accident.
public struct AllowAllAuthorizer: Authorizer {
    public init() {}

    public func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        .identified(Identity(subject: "anonymous", rights: .all, expiresAt: nil))
    }
}

public struct AllowAllAuthorizerFactory: AuthorizerFactory {
    public let name = "allow-all"

    public init() {}

    public func makeAuthorizer(options: ConfigSection, context: PluginContext) throws -> any Authorizer {
        try options.finish()
        context.logger.log(
            .warning,
            "authorization plugin 'allow-all' is active: every client may subscribe and publish to every endpoint; use it for development only")
        return AllowAllAuthorizer()
    }
}
