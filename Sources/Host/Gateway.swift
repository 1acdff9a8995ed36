import Logging
import ServiceLifecycle
import StreamgatePluginAPI

/// One gateway process: the plugins chosen by the configuration, the C fan-out
/// server, and the services that run until SIGINT/SIGTERM.
struct Gateway {
    let configuration: GatewayConfiguration
    let logger: Logger
    let plugins: PluginSet
    let server: FanoutServer
    let router: MessageRouter
    let cached: CachedFanout
    let sessions: ClientSessions
    let replayer: SourceReplayer?

    init(configuration: GatewayConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        plugins = try PluginSet(configuration: configuration, registry: .builtin())
        sessions = ClientSessions(
            mapper: plugins.mapper, authorizers: plugins.authorizers, servedTopics: Set(plugins.source.topics),
            maxSubscriptions: configuration.maxSubscriptionsPerConnection,
            tokenExpiryWarningSeconds: Double(configuration.tokenExpiryWarningSeconds),
            closeOnTokenExpiry: configuration.closeOnTokenExpiry)
        let c = configuration
        server = try FanoutServer(
            settings: .init(
                host: c.host, port: c.port, eventLoops: c.eventLoops, ioUring: c.ioUring, streamPath: c.streamPath, echoPath: c.echoPath,
                maxMessageBytes: c.maxMessageBytes, echoMaxMessageBytes: c.echoMaxMessageBytes,
                maxOutputBytes: c.maxOutputBytes, maxHeaderBytes: c.maxHeaderBytes,
                handshakeTimeoutMs: c.handshakeTimeoutMs, closeTimeoutMs: c.closeTimeoutMs,
                idleTimeoutMs: c.idleTimeoutMs, maxWriteDelayMs: c.maxWriteDelayMs, minWriteDelayMs: c.minWriteDelayMs,
                maxConnections: c.maxConnections, maxConnectionsPerAddress: c.maxConnectionsPerAddress,
                allowedOrigins: c.allowedOrigins),
            sessions: sessions)
        if c.consoleEnabled {
            try server.addStaticPage(
                path: "/", contentType: "text/html; charset=utf-8", body: ConsolePage.html(streamPath: c.streamPath))
        }
        cached = CachedFanout(configuration: c.recovery, fanout: server.handle, maxOutputBytes: c.maxOutputBytes)
        let mapper = plugins.mapper
        if let replayable = plugins.source as? any ReplayableSource {
            replayer = SourceReplayer(
                source: replayable, mapper: mapper, configuration: c.recovery, logger: Logger(label: "streamgate.replay"))
        } else {
            replayer = nil
        }
        sessions.attach(cached: cached, replayer: replayer)
        sessions.attach(publisher: plugins.source as? any PublishingSource, headers: configuration.publishHeaders,
                        ratePerSecond: c.publishRatePerSecond, burst: c.publishBurst)
        router = MessageRouter(
            mapper: plugins.mapper, fanout: cached, readiness: server.handle, logger: Logger(label: "streamgate.router"))
        if let ticking = plugins.source as? any TickingSource {
            // Produced and fanned out on the loop's own thread: no hand-over.
            let router = self.router
            server.setTicker(intervalMicroseconds: ticking.tickIntervalMicroseconds) { ticking.tick(into: router) }
        }
    }

    func run() async throws {
        try server.start()
        let base = "\(configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host):\(server.port)"
        logger.info(
            "listening",
            metadata: [
                "websocket": "ws://\(base)\(configuration.streamPath)",
                "console": configuration.consoleEnabled ? "http://\(base)/" : "disabled",
                "echo": configuration.echoPath.map { "ws://\(base)\($0)" } ?? "disabled",
                "event_loops": "\(server.loopCount)",
            ])
        if configuration.ioUring && server.ioUringLoops < server.loopCount {
            logger.warning("io_uring unavailable on \(server.loopCount - server.ioUringLoops) of \(server.loopCount) loops: writing with sendmsg there")
        } else {
            logger.info("writes: \(configuration.ioUring ? "io_uring, one submission per loop turn" : "sendmsg per connection")")
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: FanoutService(server: server, logger: logger)),
                    .init(service: SourceService(source: plugins.source, sink: router, server: server)),
                    .init(service: PeriodicService(interval: .milliseconds(100)) { [cached] in cached.tick() }),
                    .init(service: PeriodicService(interval: .seconds(1)) { [sessions] in await sessions.upkeep() }),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        replayer?.stop()
        (plugins.source as? any PublishingSource)?.finishPublishing()
        let stats = server.stats()
        let cache = cached.cacheTotals()
        logger.info(
            "stopped",
            metadata: [
                "records_routed": "\(router.routedCount)", "records_unroutable": "\(router.unroutableCount)",
                "messages_delivered": "\(stats.messages_delivered)", "connections_accepted": "\(stats.connections_accepted)",
                "slow_consumer_closes": "\(stats.slow_consumer_closes)", "protocol_errors": "\(stats.protocol_errors)",
                "connections_limited": "\(stats.connections_limited)", "origins_refused": "\(stats.origins_refused)",
                "handshakes_rejected": "\(stats.handshakes_rejected)", "handshake_timeouts": "\(stats.handshake_timeouts)",
                "epoll_errors": "\(stats.epoll_errors)",
                "idle_closes": "\(stats.idle_closes)", "delayed_write_periods": "\(stats.delayed_write_periods)",
                "publishes_rate_limited": "\(sessions.rateLimitedPublishes)",
                "subscriptions_over_limit": "\(sessions.refusedSubscriptions)",
                "cache_messages": "\(cache.messages)", "cache_bytes": "\(cache.bytes)",
            ])
    }
}

/// Keeps the C loops serving until graceful shutdown, then closes every
/// connection with 1001 and joins the loops.
struct FanoutService: Service {
    let server: FanoutServer
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down: closing client connections")
        server.stop()
    }
}

/// Runs the configured source into the router until graceful shutdown:
/// - a ticking source already runs on the event loop (see `Gateway.init`);
/// - a signalling source is prepared here, then drained on the event loop;
/// - any other source runs on its own (its `run`).
struct SourceService: Service {
    let source: any MessageSource
    let sink: any MessageSink
    let server: FanoutServer

    func run() async throws {
        if source is any TickingSource {
            try? await gracefulShutdown()
            return
        }
        if let signalling = source as? any SignallingSource {
            let fd = try await cancelWhenGracefulShutdown { try await signalling.prepareSignalling(sink: sink) }
            if let fd {
                server.watch(eventFD: fd) { signalling.drain(into: sink) }
                try? await gracefulShutdown()
                signalling.finishSignalling()
                server.unwatch()
                return
            }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
        }
        try await cancelWhenGracefulShutdown {
            try await source.run(delivering: sink)
        }
    }
}

/// Runs `work` every `interval` until graceful shutdown: the cache's upkeep
/// (expired entries and waiting resumes while no records arrive, every 100 ms)
/// and the sessions' (token expiry and revocation, every second).
struct PeriodicService: Service {
    let interval: Duration
    let work: @Sendable () async -> Void

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: interval)
            await work()
        }
    }
}
