/// One record from a source, borrowed: `key` and `value` are valid only during
/// the `MessageSink.deliver` call, so the host copies the bytes exactly once,
/// straight into the frame it fans out.
public struct SourceRecord {
    public let topic: String
    public let partition: Int32
    /// The record's offset: the sequence number clients see.
    public let offset: Int64
    /// The record's timestamp in milliseconds since the Unix epoch, -1 if unknown.
    public let timestampMs: Int64
    /// Identifies the offset sequence `offset` belongs to; it changes whenever
    /// an offset could be reused or become ambiguous (see docs/protocol.md).
    public let epoch: String
    public let key: UnsafeRawBufferPointer?
    public let value: UnsafeRawBufferPointer
    /// The record's W3C trace context (Kafka: its `traceparent` header), as
    /// produced, when it has one (since API 2.3). The host forwards it to
    /// clients when `tracing.propagate` is on.
    public let traceParent: UnsafeRawBufferPointer?

    public init(topic: String, partition: Int32, offset: Int64, timestampMs: Int64, epoch: String,
                key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, traceParent: UnsafeRawBufferPointer? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestampMs = timestampMs
        self.epoch = epoch
        self.key = key
        self.value = value
        self.traceParent = traceParent
    }
}

/// Where a source begins reading one partition: from `offset` on, every
/// record of (topic, partition) will be delivered, in offset order. The host
/// relies on this to know which positions its cache covers and which it must
/// fetch again (docs/recovery.md).
public struct PartitionStart: Sendable, Equatable {
    public let topic: String
    public let partition: Int32
    /// The epoch of every record of this partition (see `SourceRecord.epoch`).
    public let epoch: String
    /// The first offset the source will deliver.
    public let offset: Int64

    public init(topic: String, partition: Int32, epoch: String, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.epoch = epoch
        self.offset = offset
    }
}

/// Where a source hands its records: the host's router into the fan-out.
public protocol MessageSink: Sendable {
    /// A partition's consumption starts (or restarts) at an offset; called
    /// before the first record of that partition is delivered, and again
    /// whenever the source re-positions it — under a new epoch when its log
    /// was replaced (the host then drops what it cached of the old one).
    /// Never concurrently with `deliver` or `endOfBatch`.
    func partitionStarted(_ start: PartitionStart)
    /// One record; called in offset order per partition.
    func deliver(_ record: SourceRecord)
    /// The end of a batch of `deliver` calls: the host flushes to the loops.
    func endOfBatch()
    /// The source is positioned and consuming: records produced from now on
    /// will be delivered.
    func sourceIsReady()
}

/// A long-running producer of records, e.g. a Kafka consumer.
public protocol MessageSource: Sendable {
    /// The Kafka topics this source serves; subscriptions to other topics are refused.
    var topics: [String] { get }
    /// Delivers records into `sink` until the task is cancelled.
    func run(delivering sink: any MessageSink) async throws
}

/// Builds a source from its configuration section; registered by name.
public protocol MessageSourceFactory: Sendable {
    var name: String { get }
    func makeSource(options: ConfigSection, context: PluginContext) throws -> any MessageSource
}

/// A source that can produce without blocking, in short ticks. The host may
/// call `tick` on an event loop's own thread instead of calling `run`, so
/// what a tick delivers is fanned out in the same loop turn, with no hand-over
/// between threads. `tick` must return quickly and is called from one thread.
public protocol TickingSource: MessageSource {
    /// How often `tick` wants to be called.
    var tickIntervalMicroseconds: Int { get }
    /// Delivers everything due now into `sink` (then calls `endOfBatch`).
    func tick(into sink: any MessageSink)
}

/// A source whose records an event loop can consume without blocking, when a
/// file descriptor says some are waiting (e.g. librdkafka's queue event). The
/// host then drains it on the loop's own thread — no hand-over between
/// threads — instead of calling `run`.
public protocol SignallingSource: MessageSource {
    /// Connects and positions (may block; returns nil if cancelled first or if
    /// the source cannot signal, and the host then calls `run`). Returns a
    /// non-blocking eventfd that becomes readable when records are waiting;
    /// the host owns it from then on and closes it after the loops stop.
    func prepareSignalling(sink: any MessageSink) async throws -> Int32?
    /// Delivers what is waiting, without blocking (then `endOfBatch`).
    /// Called on a loop thread, never concurrently with itself.
    func drain(into sink: any MessageSink)
    /// Stops: when it returns, `drain` does nothing and the source's
    /// resources are released.
    func finishSignalling()
}

/// A partition the host wants read again from an offset (a client resumes
/// from a position older than the cache).
public struct ReplayRequest: Sendable, Equatable {
    public let topic: String
    public let partition: Int32
    /// The epoch the client's position belongs to; the source answers
    /// `.staleEpoch` when the partition no longer has it.
    public let epoch: String
    /// First offset wanted (inclusive).
    public let fromOffset: Int64

    public init(topic: String, partition: Int32, epoch: String, fromOffset: Int64) {
        self.topic = topic
        self.partition = partition
        self.epoch = epoch
        self.fromOffset = fromOffset
    }
}

/// The host's side of a replay: it decides when the read has caught up
/// with what its cache covers, and stops it then.
public protocol ReplayReader {
    /// The log's first offset; records before it are gone (retention).
    /// Called once, before any record.
    func logStarts(at offset: Int64)
    /// One record, in offset order; false stops the read.
    func read(_ record: SourceRecord) -> Bool
    /// Every record before `nextOffset` has been read and the log holds no
    /// more for now; false stops the read (else the source keeps polling).
    func caughtUp(nextOffset: Int64) -> Bool
}

/// How a replay ended.
public enum ReplayOutcome: Sendable, Equatable {
    /// The reader stopped the read.
    case stopped
    /// The partition's epoch is no longer the request's (topic re-created,
    /// partition count changed, another cluster).
    case staleEpoch(current: String?)
}

/// Why a replay failed (broker unreachable, timeout); shown to the client.
public struct ReplayError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}

/// A source that can read a partition again from a past offset (Kafka can;
/// a generator cannot). The host calls `replay` on a thread of its own with
/// bounded concurrency; it may block, but must throw once `timeoutMs` passed
/// without the reader stopping it.
public protocol ReplayableSource: MessageSource {
    func replay(_ request: ReplayRequest, timeoutMs: Int, reader: any ReplayReader) throws(ReplayError) -> ReplayOutcome
}

/// A record a client publishes, to be produced to the source's log.
public struct PublishRequest: Sendable {
    public let topic: String
    public let key: [UInt8]
    public let value: [UInt8]
    /// Kafka record headers (e.g. the publisher's token subject).
    public let headers: [PublishHeader]

    public init(topic: String, key: [UInt8], value: [UInt8], headers: [PublishHeader]) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
    }
}

public struct PublishHeader: Sendable, Equatable {
    public let name: String
    public let value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}

/// Where a published record landed: what subscribers will see as its seq.
public struct PublishReceipt: Sendable, Equatable {
    public let partition: Int32
    public let offset: Int64

    public init(partition: Int32, offset: Int64) {
        self.partition = partition
        self.offset = offset
    }
}

/// Why a record was not produced; shown to the client.
public struct PublishError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}

/// A source clients can publish into (Kafka can; a generator cannot).
public protocol PublishingSource: MessageSource {
    /// Produces the record; `completion` is called exactly once, on any
    /// thread. Records of one key published in order land in that order.
    func publish(_ request: PublishRequest, completion: @escaping @Sendable (Result<PublishReceipt, PublishError>) -> Void)
    /// Waits (briefly) for records still in flight, then releases the
    /// producer; later publishes fail.
    func finishPublishing()
}
