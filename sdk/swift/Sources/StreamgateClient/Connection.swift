import HTTPTypes
import NIOCore
import NIOWebSocket
import Synchronization
import WSClient

/// The connection loop: one connection at a time, to one node; frames in, the
/// reactions they call for, and failover to the next node when it ends.
extension StreamgateClient {
    func connectLoop() async {
        var attempt = 0
        while !isClosed && !Task.isCancelled {
            setState(state == .idle ? .connecting : .reconnecting)
            let url = node
            let outcome = await connect(to: url)
            if isClosed || Task.isCancelled { return }
            logger.debug("disconnected", metadata: ["url": "\(url)", "reason": "\(outcome.reason)"])
            emit(.disconnected(url: url, code: outcome.code, reason: outcome.reason))
            if outcome.welcomed { attempt = 0 }
            shared.withLock { $0.node = ($0.node + 1) % configuration.urls.count }
            setState(.reconnecting)
            // A draining node asked the client to move, and it already waited
            // its random share of the window: no backoff on top.
            if outcome.moved { continue }
            let delay = Backoff.delay(attempt: attempt, minimum: configuration.minReconnectDelay,
                                      maximum: configuration.maxReconnectDelay, jitter: configuration.jitter)
            do { try await Task.sleep(for: delay) } catch { return }
            attempt += 1
        }
    }

    /// One connection, from the upgrade to its end: whether a node welcomed the
    /// client on it, the close code when the gateway sent one, and why it ended.
    private func connect(to url: String) async -> (welcomed: Bool, moved: Bool, code: Int?, reason: String) {
        let token: String?
        do {
            token = try await resolveToken()
        } catch let error as StreamgateError {
            emit(.error(error))
            return (false, false, nil, error.message)
        } catch {
            return (false, false, nil, "\(error)")
        }
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        headers[.secWebSocketProtocol] = "streamgate.v1"
        // The close handshake waits at most a second: a node that stopped
        // answering must not delay the failover.
        let webSocket = WebSocketClientConfiguration(maxFrameSize: configuration.maxMessageBytes,
                                                     additionalHeaders: headers, closeTimeout: .seconds(1))
        let welcomed = ConnectionFlag()
        let moved = ConnectionFlag()
        do {
            let close = try await WebSocketClient.connect(
                url: url, configuration: webSocket, tlsConfiguration: configuration.tlsConfiguration, logger: logger
            ) { inbound, outbound, _ in
                try await self.converse(url: url, inbound: inbound, outbound: outbound, welcomed: welcomed, moved: moved)
            }
            return (welcomed.isSet, moved.isSet, close.map { Int(UInt16(webSocketErrorCode: $0.closeCode)) },
                    close?.reason ?? "closed")
        } catch {
            return (welcomed.isSet, moved.isSet, nil, "\(error)")
        }
    }

    /// Runs one connection: the reader, the liveness check and the connection's jobs,
    /// until the gateway closes it or goes silent.
    private func converse(url: String, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
                          welcomed: ConnectionFlag, moved: ConnectionFlag) async throws {
        let (jobs, jobSink) = AsyncStream.makeStream(of: ConnectionJob.self)
        let link = Link(url: url, outbound: outbound, jobs: jobSink, moved: moved)
        shared.withLock { $0.link = link }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await withDiscardingTaskGroup { running in
                    for await job in jobs { running.addTask { await job() } }
                }
            }
            group.addTask { try await self.watchLiveness(link) }
            group.addTask { try await self.read(inbound, link: link, welcomed: welcomed) }
            defer {
                detach(link)
                group.cancelAll()
            }
            // The reader ends when the gateway closes; the liveness check throws when it is silent.
            try await group.next()
        }
    }

    /// The connection is gone: requests waiting on it fail with `disconnected`, and its jobs end.
    private func detach(_ link: Link) {
        shared.withLock { state in
            guard state.link === link else { return }
            state.link = nil
            state.failPending(StreamgateError(code: .disconnected, message: "the connection to \(link.url) was lost"))
            if state.connection == .connected { state.connection = .reconnecting }
        }
        link.finishJobs()
    }

    private func read(_ inbound: WebSocketInboundStream, link: Link, welcomed: ConnectionFlag) async throws {
        for try await message in inbound.messages(maxSize: configuration.maxMessageBytes) {
            link.touch()
            switch message {
            case .binary(let frame):
                guard let delivery = DeliveryFrame.parse(frame) else { continue }
                shared.withLock { $0.route(delivery.endpoint) }?.deliver(delivery)
            case .text(let text):
                guard let reply = Reply.parse(text) else { continue }
                if reply.type == "welcome" { welcomed.set() }
                handle(reply, link: link)
            }
        }
    }

    /// With no frame for half the liveness timeout, asks for one (`ping`); with none
    /// for all of it, ends the connection so the client fails over.
    private func watchLiveness(_ link: Link) async throws {
        let limit = configuration.livenessTimeout
        while true {
            try await Task.sleep(for: limit / 8)
            let silence = link.silence()
            if silence >= limit {
                throw StreamgateError(code: .timeout, message: "nothing from \(link.url) for \(silence)")
            }
            if silence >= limit / 2, link.pingDue(every: limit / 2) {
                try? await link.send(Request.livenessPing)
            }
        }
    }

    // MARK: - control frames

    private func handle(_ reply: Reply, link: Link) {
        if let id = reply.id, let request = shared.withLock({ $0.pending.removeValue(forKey: id) }) {
            if reply.type == "error" {
                request.reply.finish(throwing: reply.error)
                return
            }
            // Route the subscription's deliveries before the next frame is read.
            if reply.type == "subscribed", let subscription = request.subscription {
                if let canonical = reply.endpoint { shared.withLock { $0.routes[canonical] = subscription } }
                subscription.subscribed(canonical: reply.endpoint)
            }
            request.reply.yield(reply)
            request.reply.finish()
            return
        }
        let subscription = shared.withLock { $0.route(reply.endpoint) }
        switch reply.type {
        case "welcome":
            welcome(reply, link: link)
        case "live":
            if let epoch = reply.epoch, let seq = reply.seq { subscription?.goLive(after: Position(epoch: epoch, seq: seq)) }
        case "replayed":
            subscription?.emit(.replayed(count: reply.count ?? 0, source: reply.source ?? ""))
        case "notice" where reply.code == "gap":
            subscription?.emit(.gap(fromSeq: reply.fromSeq, toSeq: reply.toSeq, message: reply.message ?? ""))
        case "notice" where reply.code == "stale_epoch":
            subscription?.emit(.staleEpoch(currentEpoch: reply.currentEpoch, message: reply.message ?? ""))
        case "unsubscribed":
            // Rights that no longer allow it; after an expiry or revocation the
            // subscription waits for the new token instead.
            guard let subscription, !subscription.isSuspended else { return }
            shared.withLock { $0.remove(subscription) }
            subscription.end(StreamgateError(code: .revoked, message: reply.reason ?? "ended by the gateway",
                                             endpoint: subscription.endpoint))
        case "token_expiring":
            link.run { await self.refreshToken() }
        case "moving":
            move(within: .milliseconds(max(0, reply.reconnectWithinMs ?? 0)), link: link)
        case "error":
            react(to: reply.error, of: subscription, link: link)
        default:
            return  // `pong`, and what a later protocol adds
        }
    }

    private func welcome(_ reply: Reply, link: Link) {
        let (subscriptions, waiters) = shared.withLock { state in
            state.connection = .connected
            defer { state.connectedWaiters.removeAll() }
            return (Array(state.subscriptions.values), Array(state.connectedWaiters.values))
        }
        emit(.state(.connected))
        emit(.connected(url: link.url, subject: reply.subject, expiresAt: reply.expiresAt))
        for waiter in waiters { waiter.resume() }
        // A new connection came with the provider's current token: suspended
        // subscriptions resume with the others.
        for subscription in subscriptions where subscription.isActive {
            _ = subscription.resumeIfSuspended()
            link.run { await self.sendSubscribe(subscription) }
        }
    }

    /// The node drains (`moving`, docs/protocol.md): leave it at a random moment
    /// within the window it gave, so that its clients do not all reach the other
    /// nodes at once; until then it still delivers. Requests made from then on
    /// wait for the next node, those already sent are answered here (a publish
    /// learns where its record landed); then the client closes (1000) and the
    /// connect loop goes to the next node at once and resumes every subscription.
    private func move(within window: Duration, link: Link) {
        guard link.scheduleMove() else { return }
        emit(.moving(url: link.url, reconnectWithin: window))
        let delay = window * Double.random(in: 0..<1)
        link.run {
            do { try await Task.sleep(for: delay) } catch { return }  // the connection ended first
            let leaving = self.shared.withLock { state -> Bool in
                guard state.link === link, state.connection == .connected else { return false }
                state.connection = .reconnecting
                return true
            }
            guard leaving else { return }
            self.emit(.state(.reconnecting))
            let deadline = ContinuousClock.now + self.configuration.requestTimeout
            while !self.shared.withLock({ $0.pending.isEmpty }), ContinuousClock.now < deadline {
                do { try await Task.sleep(for: .milliseconds(10)) } catch { return }
            }
            link.moved.set()
            await link.close(within: .seconds(1))
        }
    }

    /// The default reactions to errors that answer no request of the SDK's.
    private func react(to error: StreamgateError, of subscription: Subscription?, link: Link) {
        switch error.code {
        case .replayTooLarge where subscription != nil:
            // Go on live, and say that messages were skipped.
            subscription!.emit(.gap(fromSeq: nil, toSeq: nil, message: error.message))
            subscription!.forgetPosition()
            link.run { await self.sendSubscribe(subscription!) }
        case .resumeUnavailable where subscription != nil, .replayFailed where subscription != nil:
            emitRetry(subscription!, error)
        case .tokenExpired, .unauthorized:
            // The subscriptions end next: keep them, to resume with a new token.
            for subscription in shared.withLock({ Array($0.subscriptions.values) }) { subscription.suspend(error.code) }
            emit(.error(error))
            link.run { await self.refreshToken() }
        default:
            emit(.error(error))
        }
    }
}
