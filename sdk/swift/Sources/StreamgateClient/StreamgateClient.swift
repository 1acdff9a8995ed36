#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import Logging
public import ServiceLifecycle
import Synchronization

/// A connection to a Streamgate cluster that survives network loss and node
/// failure: it reconnects with backoff to the next node, resumes every
/// subscription after its last delivered message (every message once, in order),
/// and refreshes its token through the provider.
///
/// ```swift
/// let client = try StreamgateClient(configuration: .init(urls: ["ws://node1:8080/ws", "ws://node2:8080/ws"]))
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { try await client.run() }
///     for try await message in client.subscribe("/scores/live/nba") { print(message.seq, message.text ?? "") }
/// }
/// ```
///
/// `run()` holds the connection (structured concurrency: the client lives as long
/// as the task running it); it is a swift-service-lifecycle `Service`, so a
/// `ServiceGroup` can run it and end it on graceful shutdown.
public final class StreamgateClient: Service, Sendable {
    public let configuration: Configuration
    /// The client's events (one consumer; keeps the newest 256 until iterated).
    public let events: AsyncStream<ClientEvent>

    let logger: Logger
    let shared: Mutex<ClientState>
    private let eventSink: AsyncStream<ClientEvent>.Continuation
    private let closeSignal: AsyncStream<Void>
    private let closeSink: AsyncStream<Void>.Continuation

    /// Throws `badOptions`, naming the setting, when the configuration cannot work.
    public init(configuration: Configuration, logger: Logger = Logger(label: "streamgate.client")) throws {
        if let problem = configuration.problem() { throw StreamgateError(code: .badOptions, message: problem) }
        self.configuration = configuration
        self.logger = logger
        shared = Mutex(ClientState())
        (events, eventSink) = AsyncStream.makeStream(of: ClientEvent.self, bufferingPolicy: .bufferingNewest(256))
        (closeSignal, closeSink) = AsyncStream.makeStream(of: Void.self)
    }

    /// idle, connecting, connected, reconnecting or closed.
    public var state: ConnectionState { shared.withLock { $0.connection } }

    /// The URL of the node the client is on (or tries next).
    public var node: String { configuration.urls[shared.withLock { $0.node }] }

    /// Connects, and reconnects after every loss, until `close()`, cancellation or a
    /// graceful shutdown; then every subscription ends. A client runs once.
    public func run() async throws {
        try shared.withLock { state in
            if state.started { throw StreamgateError(code: .badOptions, message: "run() was already called: a client runs once") }
            state.started = true
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.connectLoop() }
                group.addTask { for await _ in self.closeSignal {} }
                _ = await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.shutDown()
        }
        shutDown()
        eventSink.finish()
    }

    /// Returns once a node has welcomed the client (at once when it is connected).
    /// Throws `closed` when the client is closed first.
    public func connected() async throws {
        let waiter = shared.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                shared.withLock { state in
                    if state.closed {
                        continuation.resume(throwing: StreamgateError(code: .closed, message: "the client was closed"))
                    } else if state.connection == .connected {
                        continuation.resume()
                    } else if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        state.connectedWaiters[waiter] = continuation
                    }
                }
            }
        } onCancel: {
            shared.withLock { $0.connectedWaiters.removeValue(forKey: waiter) }?.resume(throwing: CancellationError())
        }
    }

    /// Subscribes to `endpoint`: now when connected, and again after every reconnect,
    /// from the last delivered position. `from` resumes after a stored position;
    /// `snapshot` delivers the endpoint's latest cached message first. Subscribing to an
    /// endpoint that already has a live subscription returns that one.
    public func subscribe(_ endpoint: String, from position: Position? = nil, snapshot: Bool = false) -> Subscription {
        let (subscription, link) = shared.withLock { state -> (Subscription, Link?) in
            if let existing = state.subscriptions[endpoint], existing.isActive { return (existing, nil) }
            let subscription = Subscription(endpoint: endpoint, from: position, snapshot: snapshot) { [weak self] in
                await self?.unsubscribe($0)
            }
            if state.closed {
                subscription.end(StreamgateError(code: .closed, message: "the client was closed", endpoint: endpoint))
                return (subscription, nil)
            }
            state.subscriptions[endpoint] = subscription
            return (subscription, state.connection == .connected ? state.link : nil)
        }
        link?.run { await self.sendSubscribe(subscription) }
        return subscription
    }

    /// Publishes a text payload (its UTF-8 bytes) to `endpoint`; returns once Kafka
    /// acknowledged the record. Waits for a connection first. Throws the protocol's
    /// refusals (`forbidden`, `rateLimited`, `publishFailed`, ...), `timeout`, or
    /// `disconnected` (lost before the answer: the record may have been produced).
    /// `traceParent` (W3C) becomes the record's `traceparent` header when the
    /// gateway forwards trace context (`tracing.propagate`).
    public func publish(_ endpoint: String, text: String, traceParent: String? = nil) async throws -> Published {
        try await publish(Request(type: "publish", endpoint: endpoint, payload: text, traceParent: traceParent))
    }

    /// Publishes any bytes to `endpoint` (as `publish(_:text:)`).
    public func publish(_ endpoint: String, bytes: some Sequence<UInt8>, traceParent: String? = nil) async throws -> Published {
        try await publish(Request(type: "publish", endpoint: endpoint, payloadBase64: Data(bytes).base64EncodedString(),
                                  traceParent: traceParent))
    }

    /// Closes the connection (1000) for good: subscriptions end, waiting requests
    /// throw `closed`, and `run()` returns.
    public func close() async {
        let link = shared.withLock { state -> Link? in
            state.closed = true
            return state.link
        }
        await link?.close(within: .seconds(1))
        shutDown()
    }

    // MARK: - shared with the connection code

    func emit(_ event: ClientEvent) { eventSink.yield(event) }

    func setState(_ new: ConnectionState) {
        let changed = shared.withLock { state -> Bool in
            guard state.connection != new, state.connection != .closed else { return false }
            state.connection = new
            return true
        }
        if changed { emit(.state(new)) }
    }

    /// Marks the client closed and ends everything that waits on it; safe to call again.
    func shutDown() {
        let (subscriptions, waiters) = shared.withLock { state in
            state.closed = true
            state.failPending(StreamgateError(code: .closed, message: "the client was closed"))
            defer {
                state.subscriptions.removeAll()
                state.routes.removeAll()
                state.connectedWaiters.removeAll()
            }
            return (Array(state.subscriptions.values), Array(state.connectedWaiters.values))
        }
        for subscription in subscriptions { subscription.end(nil) }
        for waiter in waiters { waiter.resume(throwing: StreamgateError(code: .closed, message: "the client was closed")) }
        setState(.closed)
        closeSink.finish()
    }

    var isClosed: Bool { shared.withLock { $0.closed } }
}
