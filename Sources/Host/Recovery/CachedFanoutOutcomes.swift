import CFanout
import StreamgatePluginAPI

/// What the cache's answers to a subscription can be.
extension CachedFanout {
    /// What a subscribe became; the caller finishes `.fetch` with the source.
    enum Outcome {
        /// Subscribed; `replayed` messages (cache) were queued before.
        case subscribed(replayed: Int)
        /// The cache starts after the client's position (it is complete from
        /// `coveredFrom`): read the partition from the source from
        /// `request.fromOffset`, calling `completeFetch` as the read goes.
        case fetch(ReplayRequest, coveredFrom: Int64)
        /// This node has not consumed up to the client's position yet; the
        /// subscription completes when it has (or fails after a while).
        case waiting
        /// Refused; the error frame was sent.
        case refused
    }

    /// A waiting subscription that can go on (to the source), or failed:
    /// returned by `publish` and `tick` for the caller to carry on.
    struct ReadyWaiter {
        let conn: cf_conn_id
        let endpoint: String
        let subscription: UInt64
        let outcome: Outcome
    }

    /// How far a read from the source has come, as `completeFetch` sees it.
    enum FetchProgress {
        /// The subscription is done with (queued, or refused and told).
        case finished(Outcome)
        /// The cache is complete only from this offset: read on to it.
        case readOn(until: Int64)
    }
}
