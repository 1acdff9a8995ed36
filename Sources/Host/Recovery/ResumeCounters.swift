import Synchronization

/// How resumes ended, by where the missed messages came from (`cache`: this
/// node's cache decided; `kafka`: they were read again from the source) and
/// by result. Counted where each outcome is decided, read by a scrape.
final class ResumeCounters: Sendable {
    enum Source: Int, CaseIterable, Sendable {
        case cache, kafka
        var label: String { self == .cache ? "cache" : "kafka" }
    }

    enum Result: Int, CaseIterable, Sendable {
        /// Every missed message replayed.
        case replayed
        /// Replayed after a `gap` notice: some were gone (retention, or no history).
        case gap
        /// The position's epoch is not current: a `stale_epoch` notice, then live.
        case staleEpoch
        /// `replay_too_large`: not subscribed.
        case tooLarge
        /// `resume_unavailable`: the node did not reach the position in time.
        case unavailable
        /// `replay_failed`: the read from the source could not be made.
        case failed

        var label: String {
            switch self {
            case .replayed: "replayed"
            case .gap: "gap"
            case .staleEpoch: "stale_epoch"
            case .tooLarge: "too_large"
            case .unavailable: "unavailable"
            case .failed: "failed"
            }
        }
    }

    /// A lock, not atomics: resumes are rare next to messages, and a flat
    /// array of counters indexed by (source, result) stays simple.
    private let counts = Mutex([UInt64](repeating: 0, count: Source.allCases.count * Result.allCases.count))

    func count(_ source: Source, _ result: Result) {
        counts.withLock { $0[source.rawValue * Result.allCases.count + result.rawValue] += 1 }
    }

    func value(_ source: Source, _ result: Result) -> UInt64 {
        counts.withLock { $0[source.rawValue * Result.allCases.count + result.rawValue] }
    }
}
