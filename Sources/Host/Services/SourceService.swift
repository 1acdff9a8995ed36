import ServiceLifecycle
import StreamgatePluginAPI

/// Runs the configured source into the router until graceful shutdown:
/// - a ticking source already runs on the event loop (see `Gateway.init`);
/// - a signalling source is prepared here, then drained on the event loop;
/// - any other source runs on its own (its `run`).
struct SourceService: Service, CustomStringConvertible {
    let source: any MessageSource
    let sink: any MessageSink
    let server: FanoutServer

    /// ServiceLifecycle logs each service's description (at debug): the
    /// source's own, which must not carry secrets (see `KafkaSource`).
    var description: String { "SourceService(\(String(describing: source)))" }

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
