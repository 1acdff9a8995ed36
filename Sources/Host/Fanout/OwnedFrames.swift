import CFanout

/// Frames read for a resume, on their way from a replay thread into the
/// fan-out: each element is one reference to a `cf_frame` that this object
/// owns until `take()` hands every reference on (to the loops, through
/// `FanoutPort.send`, which consumes them). Whatever was never taken is
/// released when the object goes, so no path — finished, refused, failed,
/// timed out, stopped — can leak a frame or release one twice.
///
/// Used by one thread at a time (the replay thread, then, inside
/// `CachedFanout.completeFetch`, under the cache lock on that same thread),
/// hence @unchecked Sendable: it crosses into a `@Sendable` closure only to
/// be handed back on the thread that made it.
final class OwnedFrames: @unchecked Sendable {
    private var frames: [OpaquePointer] = []
    /// What the frames cost in the cache's terms (bytes + per-entry overhead).
    private(set) var bytes = 0

    var count: Int { frames.count }

    /// Takes over the caller's reference to `frame`.
    func append(_ frame: OpaquePointer) {
        var length = 0
        _ = cf_frame_bytes(frame, &length)
        frames.append(frame)
        bytes += length + EndpointCache.entryOverhead
    }

    /// Hands every reference to the caller, who must pass each on or release it.
    func take() -> [OpaquePointer] {
        defer {
            frames = []
            bytes = 0
        }
        return frames
    }

    deinit { frames.forEach { cf_frame_release($0) } }
}
