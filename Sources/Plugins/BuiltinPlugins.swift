import StreamgatePluginAPI

/// The plugins compiled into the gateway, registered before any loaded ones.
public enum BuiltinPlugins {
    public static func register(into registrar: any PluginRegistrar) {
        registrar.register(authorizer: AllowAllAuthorizerFactory())
        registrar.register(authorizer: JWTAuthorizerFactory())
        registrar.register(authorizer: StaticTokensAuthorizerFactory())
        registrar.register(authorizer: WebhookAuthorizerFactory())
        registrar.register(authorizer: PortalAuthorizerFactory())
        registrar.register(mapper: TopicKeyMapperFactory())
        registrar.register(mapper: PortalMapperFactory())
        registrar.register(source: KafkaSourceFactory())
        registrar.register(source: GeneratorSourceFactory())
    }
}
