/// Reconnect delays: exponential, capped, with full jitter (a random delay between
/// zero and the cap), so that the clients of a failed node do not all come back
/// to the next one at the same instant.
enum Backoff {
    /// The delay before reconnect attempt `attempt` (0-based).
    static func delay(attempt: Int, minimum: Duration, maximum: Duration, jitter: Bool,
                      random: () -> Double = { Double.random(in: 0..<1) }) -> Duration {
        let ceiling = min(maximum, minimum * (1 << min(attempt, 30)))
        return jitter ? ceiling * random() : ceiling
    }
}
