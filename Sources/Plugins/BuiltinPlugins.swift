import StreamgatePluginAPI

/// The plugins compiled into the gateway, registered before any loaded ones.
public enum BuiltinPlugins {
    /// `followPortal: false` (for `check-config`): the portal plugins check
    /// their options but neither ask the portal nor write their state file.
    public static func register(into registrar: any PluginRegistrar, followPortal: Bool = true) {
        registrar.register(authorizer: AllowAllAuthorizerFactory())
        registrar.register(authorizer: JWTAuthorizerFactory())
        registrar.register(authorizer: StaticTokensAuthorizerFactory())
        registrar.register(authorizer: WebhookAuthorizerFactory())
        registrar.register(authorizer: PortalAuthorizerFactory(followPortal: followPortal))
        registrar.register(mapper: TopicKeyMapperFactory())
        registrar.register(mapper: PortalMapperFactory(followPortal: followPortal))
        registrar.register(source: KafkaSourceFactory())
        registrar.register(source: GeneratorSourceFactory())
    }
}
