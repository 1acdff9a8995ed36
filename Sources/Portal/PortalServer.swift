import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import StreamgatePluginAPI

/// The portal: its stores, its routes and the HTTP server (Hummingbird),
/// built from one `PortalConfiguration`.
public struct PortalServer: Sendable {
    public let configuration: PortalConfiguration
    public let database: PortalDatabase
    let topics: any TopicCatalog

    public init(configuration: PortalConfiguration, topics: (any TopicCatalog)? = nil) throws {
        self.configuration = configuration
        database = try PortalDatabase(path: configuration.databasePath)
        self.topics = topics ?? configuration.kafkaBrokers.map { KafkaTopicCatalog(brokers: $0, properties: configuration.kafkaProperties) }
            ?? UncheckedTopics()
    }

    /// Creates the configured first administrator when the portal has no user yet.
    public func bootstrap(logger: Logger) async throws {
        let admins = AdminStore(database: database)
        guard let admin = configuration.bootstrapAdmin, try await admins.count() == 0 else { return }
        _ = try await admins.create(username: admin.username, password: admin.password, role: .admin)
        logger.notice("created the first administrator", metadata: ["username": "\(admin.username)"])
    }

    public func router(adminStore: AdminStore? = nil) -> Router<PortalRequestContext> {
        let admins = adminStore ?? AdminStore(database: database)
        let apis = ApiStore(database: database)
        let apiRoutes = ApiRoutes(apis: apis, topics: topics, gatewayURLs: configuration.gatewayURLs)
        let tokenRoutes = TokenRoutes(
            apiRoutes: apiRoutes,
            minter: TokenMinter(database: database, issuer: configuration.issuer, audience: configuration.audience),
            tokens: TokenStore(database: database), keys: KeyStore(database: database),
            maxTokenSeconds: configuration.maxTokenSeconds)
        let sessions = SessionRoutes(admins: admins, sessionSeconds: configuration.sessionSeconds)
        let gateway = GatewayStateRoute(database: database, clusterCredential: configuration.clusterCredential,
                                        issuer: configuration.issuer, audience: configuration.audience)

        let ui = UIRoutes(directory: configuration.uiDirectory)

        let router = Router(context: PortalRequestContext.self)
        let unrouted = UnroutedRequests()
        router.add(middleware: unrouted)
        router.get("/", use: ui.page)
        router.get("/ui/:file", use: ui.asset)
        router.get("/sdk/streamgate.js", use: ui.sdk)
        router.get("/api/v1/openapi.json", use: ui.openAPI)
        router.get("/healthz") { _, _ in JSONBody.response(.object(["status": .string("ok")])) }
        router.post("/api/v1/login", use: sessions.login)
        router.post("/api/v1/logout", use: sessions.logout)
        router.get("/api/v1/gateway/state", use: gateway.state)

        let authenticated = router.group("/api/v1").add(middleware: SessionAuthenticator(admins: admins))
        authenticated.get("me", use: sessions.me)
        let gatewayURLs = configuration.gatewayURLs
        authenticated.get("config") { _, context in
            _ = try context.require(.viewer)
            return JSONBody.response(.object(["gateway_urls": .array(gatewayURLs.map(JSONValue.string))]))
        }
        authenticated.get("users", use: sessions.list)
        authenticated.post("users", use: sessions.create)
        authenticated.delete("users/:username", use: sessions.delete)
        authenticated.get("apis", use: apiRoutes.list)
        authenticated.post("apis", use: apiRoutes.create)
        authenticated.get("apis/:name", use: apiRoutes.get)
        authenticated.put("apis/:name", use: apiRoutes.replace)
        authenticated.delete("apis/:name", use: apiRoutes.delete)
        authenticated.get("apis/:name/asyncapi.json", use: apiRoutes.asyncAPIJSON)
        authenticated.get("apis/:name/asyncapi.yaml", use: apiRoutes.asyncAPIYAML)
        authenticated.post("apis/:name/tokens", use: tokenRoutes.mint)
        authenticated.get("tokens", use: tokenRoutes.list)
        authenticated.get("tokens/:id", use: tokenRoutes.get)
        authenticated.delete("tokens/:id", use: tokenRoutes.revoke)
        authenticated.get("keys", use: tokenRoutes.listKeys)
        authenticated.post("keys/rotate", use: tokenRoutes.rotateKey)
        authenticated.delete("keys/:id", use: tokenRoutes.withdrawKey)
        unrouted.learn(router.routes)
        return router
    }

    /// Serves until the service group shuts down (SIGINT/SIGTERM in `streamgate portal`).
    public func application(logger: Logger) throws -> some ApplicationProtocol {
        Application(router: router(), server: try configuration.tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
                    configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                         serverName: "streamgate-portal"),
                    logger: logger)
    }
}
