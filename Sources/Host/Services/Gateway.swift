import CoreMetrics
import Logging
import Prometheus
import ServiceLifecycle
import StreamgatePluginAPI

/// One gateway process: the plugins chosen by the configuration, the C fan-out
/// server, and the services that run until SIGINT/SIGTERM.
struct Gateway {
    let configuration: GatewayConfiguration
    let logger: Logger
    let plugins: PluginSet
    let server: FanoutServer
    let control: ControlPlane
    let router: MessageRouter
    /// The service exporting spans (`tracing.export`); nil: none.
    let spanExport: (any Service)?

    /// Builds everything, in dependency order: plugins, the C server (not yet
    /// listening), the control plane against the server's port, the router.
    init(configuration c: GatewayConfiguration, logger: Logger) throws {
        configuration = c
        self.logger = logger
        plugins = try PluginSet(configuration: c, registry: .builtin())
        server = try FanoutServer(configuration: c)
        if c.consoleEnabled {
            try server.addStaticPage(
                path: "/", contentType: "text/html; charset=utf-8", body: ConsolePage.html(streamPath: c.streamPath))
            // The JavaScript SDK, so that a page can import it from the gateway it talks to.
            try server.addStaticPage(path: "/sdk/streamgate.js", contentType: "text/javascript; charset=utf-8",
                                     body: EmbeddedAssets.javaScriptSDK)
        }
        var tracing: MessageTracing?
        if let export = c.traceExport {
            let made = try MessageTracing.make(export, logger: Logger(label: "streamgate.tracing"))
            tracing = made.0
            spanExport = made.1
        } else {
            spanExport = nil
        }
        var settings = ControlPlane.Settings(c)
        settings.publish.tracing = tracing
        control = ControlPlane(
            settings: settings, mapper: plugins.mapper, authorizers: plugins.authorizers, source: plugins.source,
            fanout: server.port)
        router = MessageRouter(
            mapper: plugins.mapper, framing: RecordFraming(forwardsTraceContext: c.propagateTraceContext),
            fanout: control.resumes, readiness: server.port, tracing: tracing,
            logger: Logger(label: "streamgate.router"))
        if let ticking = plugins.source as? any TickingSource {
            // Produced and fanned out on the loop's own thread: no hand-over.
            let router = self.router
            server.setTicker(intervalMicroseconds: ticking.tickIntervalMicroseconds) { ticking.tick(into: router) }
        }
    }

    /// The metrics a scrape reads, from where each is counted.
    func metrics() -> GatewayMetrics {
        GatewayMetrics { [server, router, control] in
            let stats = server.stats()
            let cache = control.cache.cacheTotals()
            let (identified, subscriptions) = control.table.withEverySession { table -> (UInt64, UInt64) in
                table.values.reduce(into: (UInt64(0), UInt64(0))) { sums, session in
                    if session.identity != nil { sums.0 += 1 }
                    sums.1 += UInt64(session.endpoints.count)
                }
            }
            return GatewayMetrics.Readings(
                connectionsOpen: stats.connections_open, connectionsAccepted: stats.connections_accepted,
                refusedByLimit: stats.connections_limited, refusedByOrigin: stats.origins_refused,
                badHandshakes: stats.handshakes_rejected, handshakeTimeouts: stats.handshake_timeouts,
                slowConsumerCloses: stats.slow_consumer_closes, idleCloses: stats.idle_closes,
                protocolErrors: stats.protocol_errors, messagesDelivered: stats.messages_delivered,
                bytesWritten: stats.bytes_written, writeCalls: stats.write_calls,
                delayedWritePeriods: stats.delayed_write_periods, recordsRouted: router.routedCount,
                recordsUnroutable: router.unroutableCount, publishesRateLimited: control.publishes.rateLimited,
                publishesForbidden: control.publishes.refusedForbidden,
                publishesUnresolved: control.publishes.refusedUnresolved,
                publishesUnsupported: control.publishes.refusedUnsupported,
                publishesProduced: control.publishes.producedCount, publishesFailed: control.publishes.failedCount,
                connectionsWelcomed: control.authenticator.connectionsWelcomed,
                connectionsUnauthorized: control.authenticator.connectionsRefused,
                credentialsExpired: control.authenticator.credentialsExpired,
                credentialsRevoked: control.authenticator.credentialsRevoked,
                subscriptionsOverLimit: control.subscriptions.refusedOverLimit, connectionsIdentified: identified,
                subscriptions: subscriptions, cacheMessages: UInt64(cache.messages), cacheBytes: UInt64(cache.bytes),
                cacheEndpoints: UInt64(cache.endpoints), ready: router.isReady && !server.isDraining ? 1 : 0,
                cacheEvictions: cache.evictions, replayQueueDepth: UInt64(control.replayer?.queueDepth ?? 0),
                replaysStarted: control.replayer?.readsStarted ?? 0, replaysRefused: control.replayer?.readsRefused ?? 0,
                replaysExpired: control.replayer?.readsExpired ?? 0, draining: server.isDraining ? 1 : 0,
                refusedWhileDraining: stats.draining_refusals, tlsHandshakeFailures: stats.tls_handshake_failures)
        } supplement: { [server, router, control, source = plugins.source] text in
            LoopMetrics.write(server, into: &text)
            SourceMetrics.write(progress: router.progress, source: source, into: &text)
            ResumeMetrics.write(control.cache.resumes, into: &text)
        }
    }

    func run() async throws {
        try server.start(events: control.connections)
        let base = "\(configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host):\(server.boundPort)"
        let (ws, http) = configuration.tls == nil ? ("ws", "http") : ("wss", "https")
        logger.info(
            "listening",
            metadata: [
                "websocket": "\(ws)://\(base)\(configuration.streamPath)",
                "console": configuration.consoleEnabled ? "\(http)://\(base)/" : "disabled",
                "echo": configuration.echoPath.map { "\(ws)://\(base)\($0)" } ?? "disabled",
                "event_loops": "\(server.loopCount)",
            ])
        if configuration.ioUring && server.ioUringLoops < server.loopCount {
            logger.warning("io_uring unavailable on \(server.loopCount - server.ioUringLoops) of \(server.loopCount) loops: writing with sendmsg there")
        } else {
            logger.info("writes: \(configuration.ioUring ? "io_uring, one submission per loop turn" : "sendmsg per connection")")
        }
        // Shut down in reverse order: the drain first (clients move while
        // everything serves), then the source and the upkeep, the replay
        // readers, and the loops (with every connection still open) last.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // First, so the last to stop: it sends the spans of everything before.
        if let spanExport { services.append(.init(service: spanExport)) }
        services += [
            .init(service: FanoutService(server: server, logger: logger)),
            .init(service: HangupService(server: server, certificateChain: configuration.tls?.certificateChain, logger: logger)),
        ]
        if let admin = configuration.admin {
            let metrics = metrics()
            // swift-metrics takes one backend per process: this registry, so
            // what libraries record through swift-metrics is scraped with ours.
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))
            let server = AdminServer(host: admin.host, port: admin.port, metrics: metrics,
                                     readiness: { [router, server] in
                                         server.isDraining ? .draining : router.isReady ? .ready : .notReady
                                     })
            services.append(.init(service: server.application(logger: Logger(label: "streamgate.admin"))))
        }
        if let replayer = control.replayer { services.append(.init(service: replayer)) }
        services += [
            .init(service: PeriodicService(interval: .milliseconds(100)) { [resumes = control.resumes] in resumes.tick() }),
            .init(service: PeriodicService(interval: .seconds(1)) { [upkeep = control.upkeep] in await upkeep.upkeep() }),
            .init(service: SourceService(source: plugins.source, sink: router, server: server)),
            // Last, so the first to shut down: the node drains while everything still serves.
            .init(service: DrainService(
                server: server, gracePeriod: .milliseconds(configuration.drainGracePeriodMs),
                reconnectWithin: .milliseconds(configuration.drainReconnectWithinMs), logger: logger)),
        ]
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        (plugins.source as? any PublishingSource)?.finishPublishing()
        let stats = server.stats()
        let cache = control.cache.cacheTotals()
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
                "publishes_rate_limited": "\(control.publishes.rateLimited)",
                "subscriptions_over_limit": "\(control.subscriptions.refusedOverLimit)",
                "cache_messages": "\(cache.messages)", "cache_bytes": "\(cache.bytes)",
            ])
    }
}

