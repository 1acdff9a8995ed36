import Foundation
import StreamgatePluginAPI

/// The `generator` source: synthetic records at a fixed rate, entering the
/// fan-out by the same path as Kafka records, so the gateway alone can be
/// measured without the broker's cost (scripts/bench).
///
/// Records go to topic `topic` with keys `<key_prefix>1 ... <key_prefix>K`.
/// Every key is updated `rate_per_key` times per second; with `"spread":
/// true` (the default) the updates are spaced evenly in time, otherwise each
/// round publishes every key at once (a burst). Each payload starts with the
/// send time (8 bytes, big-endian nanoseconds since the Unix epoch) and the
/// key's sequence number (8 bytes), then filler up to `payload_bytes`, so a
/// subscriber can measure latency, loss and order. Records are in partition
/// 0 and numbered 1, 2, 3... across all keys (their offset, the seq clients
/// see), as Kafka numbers a partition. The generator keeps no history: a
/// resume older than the gateway's cache gets a gap notice.
public struct GeneratorSourceFactory: MessageSourceFactory {
    public let name = "generator"

    public init() {}

    public func makeSource(options: ConfigSection, context: PluginContext) throws -> any MessageSource {
        let topic = try options.string("topic", default: "bench")
        guard KafkaAddress.isValidTopic(topic) else {
            throw ConfigurationError(key: options.keyPath("topic"), value: "\"\(topic)\"", expected: "a valid Kafka topic name")
        }
        let source = GeneratorSource(
            topic: topic,
            keyPrefix: try options.string("key_prefix", default: "k"),
            keyCount: try options.int("keys", default: 1000, range: 1...10_000_000),
            ratePerKey: try options.number("rate_per_key", default: 1, range: 0.001...1_000_000),
            payloadBytes: try options.int("payload_bytes", default: 512, range: 16...(16 << 20)),
            spread: try options.bool("spread", default: true),
            tickMicroseconds: try options.int("tick_us", default: 1000, range: 50...1_000_000),
            logger: context.logger)
        try options.finish()
        return source
    }
}

public struct GeneratorSource: TickingSource {
    let topic: String
    /// How often due records are handed over as one batch.
    let tickMicroseconds: Int
    let logger: any PluginLogger
    private let schedule: GeneratorSchedule

    init(topic: String, keyPrefix: String, keyCount: Int, ratePerKey: Double, payloadBytes: Int, spread: Bool,
         tickMicroseconds: Int, logger: any PluginLogger)
    {
        self.topic = topic
        self.tickMicroseconds = tickMicroseconds
        self.logger = logger
        schedule = GeneratorSchedule(
            topic: topic, keyPrefix: keyPrefix, keyCount: keyCount, ratePerKey: ratePerKey,
            payloadBytes: payloadBytes, spread: spread)
    }

    public var topics: [String] { [topic] }
    public var tickIntervalMicroseconds: Int { tickMicroseconds }

    /// On a loop's thread (the host's choice): everything due since the last tick.
    public func tick(into sink: any MessageSink) {
        if schedule.start(announcing: logger) {
            sink.partitionStarted(schedule.partitionStart)
            sink.sourceIsReady()
        }
        schedule.deliverDue(into: sink)
    }

    /// On a thread of its own, sleeping between ticks.
    public func run(delivering sink: any MessageSink) async throws {
        await runOnDedicatedThread(named: "generator-source") { stop in
            let interval = UInt64(tickMicroseconds) * 1000
            var next = DispatchTime.now().uptimeNanoseconds + interval
            while !stop.isSet {
                let now = DispatchTime.now().uptimeNanoseconds
                if next > now { usleep(UInt32((next - now) / 1000)) }
                next += interval
                tick(into: sink)
            }
        }
    }
}

/// The generator's schedule and state: record i of the run is due at
/// start + i / totalRate when spread; each round of all keys at
/// start + r / ratePerKey in bursts. @unchecked Sendable: used by one
/// thread at a time (the loop that ticks it, or the source's own task).
final class GeneratorSchedule: @unchecked Sendable {
    private let topic: String
    private let keys: [[UInt8]]
    private let ratePerKey: Double
    private let spread: Bool
    private let epoch: String
    private var payload: [UInt8]
    private var sequence: [Int64]
    private var startNanoseconds: UInt64 = 0
    private var sent: UInt64 = 0
    private let description: String

    init(topic: String, keyPrefix: String, keyCount: Int, ratePerKey: Double, payloadBytes: Int, spread: Bool) {
        self.topic = topic
        keys = (1...keyCount).map { Array("\(keyPrefix)\($0)".utf8) }
        self.ratePerKey = ratePerKey
        self.spread = spread
        epoch = "generator-" + String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 16)
        payload = [UInt8](repeating: 0x2A, count: payloadBytes)
        sequence = [Int64](repeating: 0, count: keyCount)
        description = "generator source: \(keyCount) keys x \(ratePerKey)/s = \(ratePerKey * Double(keyCount)) records/s of \(payloadBytes) bytes, \(spread ? "spread evenly" : "in bursts")"
    }

    /// Where the records begin: offset 1 of partition 0.
    var partitionStart: PartitionStart { PartitionStart(topic: topic, partition: 0, epoch: epoch, offset: 1) }

    /// Starts the clock on first use; true that one time.
    func start(announcing logger: any PluginLogger) -> Bool {
        guard startNanoseconds == 0 else { return false }
        startNanoseconds = DispatchTime.now().uptimeNanoseconds
        logger.log(.info, description)
        return true
    }

    func deliverDue(into sink: any MessageSink) {
        let keyCount = UInt64(keys.count)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - startNanoseconds) / 1e9
        let scheduled = spread
            ? UInt64(elapsed * ratePerKey * Double(keyCount)) : (UInt64(elapsed * ratePerKey) + 1) * keyCount
        // A generator that outruns the loop catches up at most 10 ms of records
        // (at least one round of keys) per tick, so a tick stays short and the
        // loop keeps serving its connections and its stop signal; no record is skipped.
        let catchUp = max(keyCount, UInt64(ratePerKey * Double(keyCount) / 100))
        let due = min(scheduled, sent + catchUp)
        guard sent < due else { return }
        while sent < due {
            let index = Int(sent % keyCount)
            sequence[index] += 1
            let now = UInt64(Date().timeIntervalSince1970 * 1e9)
            Self.storeBigEndian(now, into: &payload, at: 0)
            Self.storeBigEndian(UInt64(sequence[index]), into: &payload, at: 8)
            keys[index].withUnsafeBytes { key in
                payload.withUnsafeBytes { value in
                    sink.deliver(SourceRecord(
                        topic: topic, partition: 0, offset: Int64(sent + 1), timestampMs: Int64(now / 1_000_000),
                        epoch: epoch, key: key, value: value))
                }
            }
            sent += 1
        }
        sink.endOfBatch()
    }

    private static func storeBigEndian(_ value: UInt64, into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64(i))) }
    }
}
