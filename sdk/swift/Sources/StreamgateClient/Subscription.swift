import Synchronization

/// One endpoint's subscription: iterate it for the endpoint's messages, in order,
/// each once, across reconnects and node failures.
///
/// ```swift
/// for try await message in client.subscribe("/scores/live/nba") { ... }
/// ```
///
/// Messages wait in the subscription until they are iterated (none is lost to a
/// late iterator); iterate it from one task. Iteration ends when the subscription
/// does: normally after `unsubscribe()` or `close()`, with a `StreamgateError` when
/// the gateway refused it (`forbidden`, ...) or ended it (`revoked`).
public final class Subscription: AsyncSequence, Sendable {
    public typealias Element = Message
    public typealias AsyncIterator = AsyncThrowingStream<Message, any Error>.AsyncIterator

    /// The endpoint as asked for.
    public let endpoint: String
    /// Notices and the SDK's reactions to them. Keeps the newest 256 until iterated.
    public let events: AsyncStream<SubscriptionEvent>

    private let messages: AsyncThrowingStream<Message, any Error>
    private let messageSink: AsyncThrowingStream<Message, any Error>.Continuation
    private let eventSink: AsyncStream<SubscriptionEvent>.Continuation
    private let state: Mutex<State>
    private let onUnsubscribe: @Sendable (Subscription) async -> Void

    struct State {
        var position: Position?
        var canonical: String?
        var snapshot: Bool
        var ended = false
        /// Why the gateway ended it for now (`token_expired`, `unauthorized`): it
        /// resumes once a new token is accepted, instead of ending for the application.
        var suspended: StreamgateError.Code?
    }

    init(endpoint: String, from position: Position?, snapshot: Bool,
         onUnsubscribe: @escaping @Sendable (Subscription) async -> Void) {
        self.endpoint = endpoint
        (messages, messageSink) = AsyncThrowingStream.makeStream(of: Message.self)
        (events, eventSink) = AsyncStream.makeStream(of: SubscriptionEvent.self, bufferingPolicy: .bufferingNewest(256))
        state = Mutex(State(position: position, snapshot: snapshot && position == nil))
        self.onUnsubscribe = onUnsubscribe
    }

    public func makeAsyncIterator() -> AsyncIterator { messages.makeAsyncIterator() }

    /// The last delivered position (or the one resumed from): store it to resume
    /// after a restart with `subscribe(_:from:)`.
    public var position: Position? { state.withLock { $0.position } }
    /// The gateway's canonical name for the endpoint, once subscribed.
    public var canonicalEndpoint: String? { state.withLock { $0.canonical } }
    public var isEnded: Bool { state.withLock { $0.ended } }

    /// Ends the subscription (on the gateway too, when connected); iteration ends.
    public func unsubscribe() async { await onUnsubscribe(self) }

    // MARK: - driven by the client

    /// Hands a delivery to the application, unless it is at or before the last
    /// delivered position: a duplicate the gateway could not have sent, dropped here
    /// as a second guard so the application never sees one.
    func deliver(_ message: Message) {
        let fresh = state.withLock { state -> Bool in
            if state.ended { return false }
            if let last = state.position, last.epoch == message.epoch, message.seq <= last.seq { return false }
            state.position = message.position
            return true
        }
        if fresh { messageSink.yield(message) }
    }

    func emit(_ event: SubscriptionEvent) { eventSink.yield(event) }

    /// What a subscribe request for it says now: resume after the last position, or a snapshot.
    func request() -> Request {
        state.withLock { state in
            Request(type: "subscribe", endpoint: endpoint, from: state.position,
                    snapshot: state.position == nil && state.snapshot ? true : nil)
        }
    }

    func subscribed(canonical: String?) {
        state.withLock {
            $0.canonical = canonical
            $0.snapshot = false
        }
        emit(.subscribed(endpoint: canonical ?? endpoint))
    }

    /// The gateway's `live` position: live delivery starts after it. Kept as the
    /// resume position while nothing later was delivered, so a failover before the
    /// first message still resumes exactly.
    func goLive(after live: Position) {
        state.withLock { state in
            if let position = state.position, position.epoch == live.epoch, position.seq >= live.seq { return }
            state.position = live
        }
    }

    /// After `replay_too_large`: the next subscribe goes on live.
    func forgetPosition() { state.withLock { $0.position = nil } }

    func suspend(_ code: StreamgateError.Code) { state.withLock { if !$0.ended { $0.suspended = code } } }

    /// Lifts a suspension; true when there was one.
    func resumeIfSuspended() -> Bool {
        state.withLock { state in
            defer { state.suspended = nil }
            return state.suspended != nil && !state.ended
        }
    }

    var isSuspended: Bool { state.withLock { $0.suspended != nil } }

    var isActive: Bool { state.withLock { !$0.ended } }

    /// Ends it once: with `nil` normally, else with the error iteration throws.
    func end(_ error: StreamgateError?) {
        let first = state.withLock { state -> Bool in
            defer { state.ended = true }
            return !state.ended
        }
        guard first else { return }
        emit(.ended(error))
        eventSink.finish()
        messageSink.finish(throwing: error)
    }
}
