import ServiceLifecycle

/// Runs `work` every `interval` until graceful shutdown: the cache's upkeep
/// (expired entries and waiting resumes while no records arrive, every 100 ms)
/// and `CredentialUpkeep` (token expiry and revocation, every second).
struct PeriodicService: Service {
    let interval: Duration
    let work: @Sendable () async -> Void

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // The wait ends at shutdown, so stopping does not wait out an interval.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            await work()
        }
    }
}
