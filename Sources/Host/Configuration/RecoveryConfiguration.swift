import StreamgatePluginAPI

/// The `recovery` section: how much each endpoint's cache keeps, and how
/// resumes older than the cache are fetched from the source (docs/recovery.md).
struct RecoveryConfiguration: Equatable {
    /// Bounds of one endpoint's cache. An entry is evicted when it is older
    /// than `maxAgeMs`, or when the endpoint holds more than `maxMessages`
    /// entries or `maxBytes` bytes.
    struct CacheLimits: Equatable {
        var maxAgeMs = 300_000
        var maxMessages = 1_000
        var maxBytes = 1 << 20
    }

    /// Limits for the endpoints a pattern matches (first match wins).
    struct PatternLimits: Equatable {
        let pattern: EndpointPattern
        let limits: CacheLimits
    }

    var defaults = CacheLimits()
    var patterns: [PatternLimits] = []
    /// All caches together; the globally oldest entries go first beyond it.
    var maxTotalBytes = 256 << 20
    /// Replays from the source running at once (each on its own thread).
    var replayConcurrency = 2
    /// Records a single replay may deliver (bounded so one client cannot make the node buffer a whole log).
    var maxReplayMessages = 10_000
    /// How long one replay may take.
    var replayTimeoutMs = 10_000
    /// Records one replay reads per second at most (all keys of the
    /// partition count), so a long replay paces itself instead of taking
    /// the broker and a core for itself.
    var replayRecordsPerSecond = 200_000
    /// How long a resume waits for this node's consumer to reach the client's
    /// position (it may lag the node the client came from).
    var resumeWaitMs = 5_000

    init() {}

    init(section: ConfigSection) throws(ConfigurationError) {
        let cache = try section.section("cache")
        defaults = try Self.limits(cache, defaults: CacheLimits())
        maxTotalBytes = try cache.int("max_total_bytes", default: maxTotalBytes, range: 0...(1 << 40))
        if let raw = cache.raw("endpoints"), raw != .null {
            guard case .array(let items) = raw else {
                throw ConfigurationError(
                    key: cache.keyPath("endpoints"), value: raw.description,
                    expected: "an array of objects such as {\"pattern\": \"/scores/**\", \"max_age_ms\": 60000}")
            }
            for (i, item) in items.enumerated() {
                let entry = try ConfigSection(path: "\(cache.keyPath("endpoints"))[\(i)]", value: item)
                let text = try entry.requiredString("pattern", expected: "an endpoint pattern such as \"/scores/**\"")
                let pattern: EndpointPattern
                do {
                    pattern = try EndpointPattern(text)
                } catch {
                    throw ConfigurationError(
                        key: entry.keyPath("pattern"), value: "\"\(text)\"", expected: "a valid pattern (\(error.reason))")
                }
                patterns.append(PatternLimits(pattern: pattern, limits: try Self.limits(entry, defaults: defaults)))
                try entry.finish()
            }
        }
        try cache.finish()

        let replay = try section.section("replay")
        replayConcurrency = try replay.int("max_concurrent", default: replayConcurrency, range: 1...64)
        maxReplayMessages = try replay.int("max_messages", default: maxReplayMessages, range: 1...10_000_000)
        replayTimeoutMs = try replay.int("timeout_ms", default: replayTimeoutMs, range: 100...600_000)
        replayRecordsPerSecond = try replay.int(
            "max_records_per_second", default: replayRecordsPerSecond, range: 1...100_000_000)
        resumeWaitMs = try replay.int("resume_wait_ms", default: resumeWaitMs, range: 0...600_000)
        try replay.finish()
        try section.finish()
    }

    /// The limits for one endpoint.
    func limits(for endpoint: String) -> CacheLimits {
        patterns.first { $0.pattern.matches(endpoint) }?.limits ?? defaults
    }

    private static func limits(_ section: ConfigSection, defaults: CacheLimits) throws(ConfigurationError) -> CacheLimits {
        CacheLimits(
            maxAgeMs: try section.int("max_age_ms", default: defaults.maxAgeMs, range: 0...(7 * 86_400_000)),
            maxMessages: try section.int("max_messages", default: defaults.maxMessages, range: 0...10_000_000),
            maxBytes: try section.int("max_bytes", default: defaults.maxBytes, range: 0...(1 << 40)))
    }
}
