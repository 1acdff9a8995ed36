import Foundation
import StreamgatePluginAPI

/// Collects what a replay reads for one endpoint and finishes the
/// subscription as soon as the read reaches what the cache covers. Used by
/// one replay thread.
final class ReplayCollector: ReplayReader {
    private let job: SourceReplayer.Job
    private let mapper: any EndpointMapper
    private let framing: RecordFraming
    private let maxMessages: Int
    private var pace: ReplayPace
    /// The endpoint's records read so far; released with the collector unless taken.
    private let frames = OwnedFrames()
    private var lost: ClosedRange<Int64>?
    /// Where the cache was complete from at the last look.
    private var target: Int64
    /// How many records the finished subscription took (for the log).
    private var finished: Int?
    private var tooLarge = false

    init(job: SourceReplayer.Job, mapper: any EndpointMapper, framing: RecordFraming, maxMessages: Int, pace: ReplayPace) {
        self.job = job
        self.mapper = mapper
        self.framing = framing
        self.maxMessages = maxMessages
        self.pace = pace
        target = job.coveredFrom
    }

    var summary: String { finished.map { "finished with \($0) records" } ?? (tooLarge ? "too large" : "not finished") }

    func logStarts(at offset: Int64) {
        if offset > job.request.fromOffset { lost = job.request.fromOffset...(offset - 1) }
    }

    func read(_ record: SourceRecord) -> Bool {
        pace.recordRead()
        if pace.read % 1024 == 0 && !job.isWanted() { return false }
        if let key = record.key, mapper.endpoint(topic: record.topic, key: key) == job.endpoint {
            guard frames.count < maxMessages else {
                tooLarge = true
                return false
            }
            if let frame = framing.frame(record, endpoint: job.endpoint) {
                frames.append(frame)
            }
        }
        return record.offset + 1 >= target ? attempt(position: record.offset + 1) : true
    }

    func caughtUp(nextOffset: Int64) -> Bool { job.isWanted() && attempt(position: nextOffset) }

    /// True to read on.
    private func attempt(position: Int64) -> Bool {
        let count = frames.count
        switch job.attempt(position, frames, lost) {
        case .finished:
            finished = count
            return false
        case .readOn(let until):
            target = until
            return true
        }
    }

    /// The read stopped: finished, or stopped for being too large.
    func finishStopped() {
        guard finished == nil else { return }
        job.failed(
            .replayTooLarge,
            tooLarge ? "more than recovery.replay.max_messages messages were missed; subscribe without \"from\" to go on live"
                : "the read from the source stopped before it caught up")
    }
}

/// Keeps one replay at or under its records-per-second budget by sleeping
/// when it gets ahead (checked every 16 records, so the clock costs little).
struct ReplayPace {
    let recordsPerSecond: Int
    let startNs: UInt64
    private(set) var read = 0

    init(recordsPerSecond: Int, startNs: UInt64) {
        self.recordsPerSecond = recordsPerSecond
        self.startNs = startNs
    }

    mutating func recordRead() {
        read += 1
        guard read % 16 == 0, let wait = delayNs(nowNs: DispatchTime.now().uptimeNanoseconds) else { return }
        usleep(UInt32(min(wait / 1_000, 1_000_000)))
    }

    /// How long to wait before reading on, or nil when within budget.
    func delayNs(nowNs: UInt64) -> UInt64? {
        let dueNs = startNs + UInt64(Double(read) / Double(recordsPerSecond) * 1e9)
        return dueNs > nowNs ? dueNs - nowNs : nil
    }
}
