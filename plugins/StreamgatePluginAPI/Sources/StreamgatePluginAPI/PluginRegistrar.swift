/// Receives a plugin package's factories. The host's registry implements it;
/// a plugin library's entry point is handed one and registers what it offers.
public protocol PluginRegistrar: AnyObject {
    func register(authorizer factory: any AuthorizerFactory)
    func register(mapper factory: any EndpointMapperFactory)
    func register(source factory: any MessageSourceFactory)
}
