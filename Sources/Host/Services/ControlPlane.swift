import Logging
import StreamgatePluginAPI

/// The control plane's object graph, built once, in dependency order, from
/// the configuration, the plugins and a fan-out port (the C server's, or a
/// fake in the unit tests). Nothing is wired after construction.
///
///     ClientConnections ── ConnectionAuthenticator ── Subscriptions ── ResumeCoordinator ── CachedFanout
///            │                      │                       │                  └─ SourceReplayer
///            └── PublishGate        └─ CredentialUpkeep      └─ SessionTable (every part's state)
struct ControlPlane {
    let table: SessionTable
    let cache: CachedFanout
    let replayer: SourceReplayer?
    let resumes: ResumeCoordinator
    let subscriptions: Subscriptions
    let publishes: PublishGate
    let authenticator: ConnectionAuthenticator
    let upkeep: CredentialUpkeep
    /// What the C loops call (`FanoutServer.start(events:)`).
    let connections: ClientConnections

    struct Settings {
        var recovery = RecoveryConfiguration()
        var maxOutputBytes = 4 * 1024 * 1024
        var maxSubscriptionsPerConnection = 1_000
        var publish = PublishGate.Settings()
        var authentication = ConnectionAuthenticator.Settings()
        var framing = RecordFraming()

        init() {}

        init(_ c: GatewayConfiguration) {
            recovery = c.recovery
            maxOutputBytes = c.maxOutputBytes
            maxSubscriptionsPerConnection = c.maxSubscriptionsPerConnection
            publish = .init(headers: c.publishHeaders, traceContext: c.propagateTraceContext,
                            ratePerSecond: c.publishRatePerSecond, burst: c.publishBurst)
            authentication = .init(tokenExpiryWarningSeconds: Double(c.tokenExpiryWarningSeconds),
                                   closeOnTokenExpiry: c.closeOnTokenExpiry, announcesTraceContext: c.propagateTraceContext)
            framing = RecordFraming(forwardsTraceContext: c.propagateTraceContext)
        }
    }

    init(settings: Settings, mapper: any EndpointMapper, authorizers: AuthorizerChain, source: any MessageSource,
         fanout: any FanoutPort, logger: Logger = Logger(label: "streamgate.replay"))
    {
        table = SessionTable()
        cache = CachedFanout(configuration: settings.recovery, fanout: fanout, ledger: table,
                             maxOutputBytes: settings.maxOutputBytes)
        replayer = (source as? any ReplayableSource).map {
            SourceReplayer(source: $0, mapper: mapper, framing: settings.framing, configuration: settings.recovery,
                           logger: logger)
        }
        resumes = ResumeCoordinator(cache: cache, replayer: replayer, ledger: table, fanout: fanout)
        let resolver = EndpointResolver(mapper: mapper, servedTopics: Set(source.topics))
        subscriptions = Subscriptions(table: table, resolver: resolver, resumes: resumes, fanout: fanout,
                                      maxPerConnection: settings.maxSubscriptionsPerConnection)
        publishes = PublishGate(table: table, resolver: resolver, publisher: source as? any PublishingSource,
                                fanout: fanout, settings: settings.publish)
        authenticator = ConnectionAuthenticator(authorizers: authorizers, table: table, subscriptions: subscriptions,
                                                fanout: fanout, settings: settings.authentication)
        upkeep = CredentialUpkeep(authenticator: authenticator, table: table, fanout: fanout)
        connections = ClientConnections(table: table, authenticator: authenticator, subscriptions: subscriptions,
                                        publishes: publishes, fanout: fanout)
    }
}
