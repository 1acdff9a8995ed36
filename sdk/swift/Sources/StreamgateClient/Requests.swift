import Synchronization

/// Requests and their replies, matched by id, and the requests the client makes
/// on its own (resubscribes, token refreshes, unsubscribes).
extension StreamgateClient {
    /// Sends `body` with a fresh id and returns its reply; throws the reply's error,
    /// `disconnected` when the connection ends first, `timeout`, or `RequestNotSent`
    /// when there is no connection to send it on (nothing reached the gateway).
    func request(_ body: Request, for subscription: Subscription? = nil) async throws -> Reply {
        let (link, id, replies) = try shared.withLock { state in
            guard let link = state.link, state.connection == .connected else { throw RequestNotSent() }
            let id = state.nextRequestID
            state.nextRequestID += 1
            let (replies, sink) = AsyncThrowingStream.makeStream(of: Reply.self)
            state.pending[id] = .init(reply: sink, subscription: subscription)
            return (link, id, replies)
        }
        defer { _ = shared.withLock { $0.pending.removeValue(forKey: id) } }
        var numbered = body
        numbered.id = id
        do {
            try await link.send(numbered.json())
        } catch {
            throw StreamgateError(code: .disconnected, message: "the connection to \(link.url) was lost", endpoint: body.endpoint)
        }
        let timeout = configuration.requestTimeout
        return try await withThrowingTaskGroup(of: Reply.self) { group in
            group.addTask {
                for try await reply in replies { return reply }
                throw CancellationError()
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw StreamgateError(code: .timeout, message: "no answer to \(body.type) within \(timeout)", endpoint: body.endpoint)
            }
            defer { group.cancelAll() }
            guard let reply = try await group.next() else { throw CancellationError() }
            return reply
        }
    }

    /// Subscribes (or resumes) `subscription` on the current connection. A refusal
    /// ends it; a lost connection leaves it for the next one; no answer in time
    /// tries again after `retryResumeDelay`.
    func sendSubscribe(_ subscription: Subscription) async {
        guard subscription.isActive, !subscription.isSuspended else { return }
        do {
            // The reader marks it subscribed when the reply arrives (see `Connection`).
            _ = try await request(subscription.request(), for: subscription)
        } catch let error as StreamgateError {
            switch error.code {
            case .disconnected, .closed:
                return
            case .timeout:
                emitRetry(subscription, error)
            default:
                shared.withLock { $0.remove(subscription) }
                subscription.end(error)
            }
        } catch {
            return  // cancelled: the connection is ending
        }
    }

    /// Tells the application the resume is tried again, and tries it after about
    /// `retryResumeDelay` (randomised so that refused clients spread out).
    func emitRetry(_ subscription: Subscription, _ error: StreamgateError) {
        subscription.emit(.retry(error))
        let delay = configuration.retryResumeDelay * Double.random(in: 0.5..<1.5)
        shared.withLock { $0.link }?.run {
            do { try await Task.sleep(for: delay) } catch { return }
            await self.sendSubscribe(subscription)
        }
    }

    /// Sends the provider's new token in-band, then resumes the subscriptions the
    /// old one's expiry or revocation suspended.
    func refreshToken() async {
        guard case .provider = configuration.token else { return }
        do {
            let token = try await resolveToken()
            _ = try await request(Request(type: "auth", token: token))
        } catch let error as StreamgateError {
            if error.code != .disconnected && error.code != .closed { emit(.error(error)) }
            return
        } catch {
            return
        }
        emit(.tokenRefreshed)
        let subscriptions = shared.withLock { Array($0.subscriptions.values) }
        for subscription in subscriptions where subscription.resumeIfSuspended() {
            await sendSubscribe(subscription)
        }
    }

    /// The token for the next connect or refresh; throws `tokenProvider` when the provider throws.
    func resolveToken() async throws -> String? {
        switch configuration.token {
        case .none: return nil
        case .fixed(let token): return token
        case .provider(let provider):
            do {
                return try await provider()
            } catch {
                throw StreamgateError(code: .tokenProvider, message: "the token provider failed: \(error)")
            }
        }
    }

    /// `request` found no connection to send on: the gateway got nothing.
    struct RequestNotSent: Error {}

    func unsubscribe(_ subscription: Subscription) async {
        guard subscription.isActive else { return }
        let connected = shared.withLock { state -> Bool in
            state.remove(subscription)
            return state.connection == .connected
        }
        subscription.end(nil)
        if connected {
            _ = try? await request(Request(type: "unsubscribe", endpoint: subscription.endpoint))
        }
    }

    func publish(_ body: Request) async throws -> Published {
        var answer: Reply?
        while answer == nil {
            try await connected()
            // Between `connected()` and the send the client may have begun leaving a
            // draining node: the record was not sent, so wait for the next node.
            do { answer = try await request(body) } catch is RequestNotSent { continue }
        }
        let reply = answer!
        guard let partition = reply.partition, let offset = reply.offset else {
            throw StreamgateError(code: .badRequest, message: "the gateway's published reply lacks partition or offset", endpoint: body.endpoint)
        }
        return Published(endpoint: reply.endpoint ?? body.endpoint ?? "", partition: partition, offset: offset)
    }
}
