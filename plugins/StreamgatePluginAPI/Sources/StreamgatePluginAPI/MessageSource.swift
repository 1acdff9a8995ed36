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

    public init(topic: String, partition: Int32, offset: Int64, timestampMs: Int64, epoch: String,
                key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestampMs = timestampMs
        self.epoch = epoch
        self.key = key
        self.value = value
    }
}

/// Where a source hands its records: the host's router into the fan-out.
public protocol MessageSink: Sendable {
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
