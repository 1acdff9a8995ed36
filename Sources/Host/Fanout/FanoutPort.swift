import CFanout

/// What the control plane asks of the fan-out: the C loops in production
/// (`CFanoutPort`), a recording fake in the unit tests.
///
/// Every call posts one command to the loop that owns the connection (or to
/// every loop, for `publish`); a loop runs its commands in the order they
/// were posted. The exactly-once resume join rests on that order: what is
/// posted under the cache lock reaches each connection in posting order.
/// Frames are `cf_frame` references: a call that takes one consumes it.
protocol FanoutPort: Sendable {
    /// Fans delivery frames out to their endpoints' subscribers (one
    /// reference per frame consumed), with at most one wake-up per loop.
    func publish(batch frames: UnsafeBufferPointer<OpaquePointer?>)
    /// From the next published frame on, `conn` receives `endpoint`'s frames.
    func subscribe(_ conn: cf_conn_id, to endpoint: String)
    func unsubscribe(_ conn: cf_conn_id, from endpoint: String)
    /// Sends one text message (a control reply or notice) to one connection.
    func sendText(_ conn: cf_conn_id, _ text: String)
    /// Sends one frame to one connection (consumes the reference).
    func send(_ conn: cf_conn_id, frame: OpaquePointer)
    /// Closes the connection with a WebSocket close code and reason.
    func close(_ conn: cf_conn_id, code: UInt16, reason: String)
    /// What GET /readyz answers: 200 once the source is ready.
    func setReady(_ ready: Bool)
}
