import CFanout
import Foundation
import StreamgatePluginAPI
import Testing

@testable import streamgate

/// Tests of the recovery building blocks: the ring buffer, the endpoint
/// cache, endpoint patterns, the `recovery` configuration section, the
/// resume options of subscribe requests and the snapshot copy of a frame.
/// Helpers live in this namespace so they cannot clash with other test files.
enum RecoveryTests {
    static let ms: UInt64 = 1_000_000

    // MARK: Frames

    /// A delivery frame owning one reference (the caller releases it).
    static func frame(_ endpoint: String, epoch: String = "e1", seq: Int64 = 0, payloadSize: Int = 8,
                      fill: UInt8 = 0xAB) throws -> OpaquePointer
    {
        let payload = [UInt8](repeating: fill, count: payloadSize)
        return try #require(payload.withUnsafeBytes {
            DeliveryFrame.make(endpoint: endpoint, epoch: epoch, seq: seq, timestampMs: -1, payload: $0)
        })
    }

    /// The encoded bytes of a frame (WebSocket header included).
    static func bytes(of frame: OpaquePointer) throws -> [UInt8] {
        var length = 0
        let base = try #require(cf_frame_bytes(frame, &length))
        return Array(UnsafeBufferPointer(start: base, count: length))
    }

    /// What one cached entry of such a frame costs in the cache.
    static func entryBytes(_ endpoint: String, epoch: String = "e1", payloadSize: Int = 8) throws -> Int {
        let f = try frame(endpoint, epoch: epoch, payloadSize: payloadSize)
        defer { cf_frame_release(f) }
        return try bytes(of: f).count + EndpointCache.entryOverhead
    }

    // MARK: Cache

    static func configuration(maxAgeMs: Int = 300_000, maxMessages: Int = 1_000, maxBytes: Int = 1 << 20,
                              maxTotalBytes: Int = 256 << 20,
                              patterns: [(String, RecoveryConfiguration.CacheLimits)] = []) throws
        -> RecoveryConfiguration
    {
        var c = RecoveryConfiguration()
        c.defaults = RecoveryConfiguration.CacheLimits(maxAgeMs: maxAgeMs, maxMessages: maxMessages, maxBytes: maxBytes)
        c.maxTotalBytes = maxTotalBytes
        c.patterns = try patterns.map { RecoveryConfiguration.PatternLimits(pattern: try EndpointPattern($0.0), limits: $0.1) }
        return c
    }

    /// Appends a fresh frame to the cache and drops this side's reference,
    /// as `CachedFanout` does once the frame is published.
    @discardableResult
    static func put(_ cache: EndpointCache, _ endpoint: String, _ partition: PartitionID, epoch: String = "e1",
                    offset: Int64, payloadSize: Int = 8, nowNs: UInt64 = 0) throws -> Bool
    {
        let f = try frame(endpoint, epoch: epoch, seq: offset, payloadSize: payloadSize)
        defer { cf_frame_release(f) }
        return cache.append(endpoint: endpoint, partition: partition, epoch: epoch, offset: offset, frame: f, nowNs: nowNs)
    }

    /// The offsets cached for `endpoint` (from the partition it currently comes from).
    static func offsets(_ cache: EndpointCache, _ endpoint: String, after: Int64 = .min) -> [Int64] {
        guard let partition = cache.histories[endpoint]?.partition else { return [] }
        return cache.messages(of: endpoint, in: partition, after: after).map(\.offset)
    }

    /// The sum of what every history holds, to compare with the counters.
    static func heldBytes(_ cache: EndpointCache) -> Int {
        cache.histories.values.reduce(0) { sum, h in
            sum + (0..<h.messages.count).reduce(0) { $0 + h.messages[$1].bytes }
        }
    }

    static func heldMessages(_ cache: EndpointCache) -> Int {
        cache.histories.values.reduce(0) { $0 + $1.messages.count }
    }

    // MARK: Configuration

    static func json(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    static func recovery(_ text: String) throws -> RecoveryConfiguration {
        try RecoveryConfiguration(section: ConfigSection(path: "recovery", value: json(text)))
    }

    static func recoveryError(_ text: String) throws -> ConfigurationError? {
        let value = try json(text)
        do {
            _ = try RecoveryConfiguration(section: ConfigSection(path: "recovery", value: value))
            return nil
        } catch {
            return error
        }
    }

    // MARK: Requests

    static func parse(_ text: String) throws -> ClientProtocol.Request {
        try Array(text.utf8).withUnsafeBytes { try ClientProtocol.parse($0) }
    }

    static func parseError(_ text: String) -> ClientProtocol.RequestError? {
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        do {
            _ = try ClientProtocol.parse(UnsafeRawBufferPointer(rebasing: buffer[..<bytes.count]))
            return nil
        } catch {
            return error
        }
    }

    static func object(_ text: String) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(value as? [String: Any], "not a JSON object: \(text)")
    }
}

/// A deterministic generator (SplitMix64) for reproducible randomised tests.
struct RecoveryTestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - RingBuffer

extension RecoveryTests {
    @Suite("Recovery: RingBuffer")
    struct RingBufferTests {
        static func contents<T>(_ b: RingBuffer<T>) -> [T] { (0..<b.count).map { b[$0] } }

        @Test func emptyBuffer() {
            var b = RingBuffer<Int>()
            #expect(b.isEmpty)
            #expect(b.count == 0)
            #expect(b.first == nil)
            #expect(b.last == nil)
            #expect(b.removeFirst() == nil)
            #expect(b.partitioningIndex { _ in true } == 0)
            #expect(b.partitioningIndex { _ in false } == 0)
        }

        @Test func orderIsKeptAcrossWrapAround() {
            var b = RingBuffer<Int>()
            for i in 0..<4 { b.append(i) }  // capacity 4, full
            #expect(b.removeFirst() == 0)
            #expect(b.removeFirst() == 1)
            b.append(4)
            b.append(5)  // wraps: physically [4, 5, 2, 3]
            #expect(Self.contents(b) == [2, 3, 4, 5])
            #expect(b.first == 2)
            #expect(b.last == 5)
            #expect(b.count == 4)
        }

        @Test func growingWhileWrappedKeepsOrder() {
            var b = RingBuffer<Int>()
            for i in 0..<4 { b.append(i) }
            _ = b.removeFirst()
            _ = b.removeFirst()
            b.append(4)
            b.append(5)  // full and wrapped, head in the middle
            b.append(6)  // grows
            b.append(7)
            b.append(8)
            #expect(Self.contents(b) == [2, 3, 4, 5, 6, 7, 8])
            #expect(b.first == 2)
            #expect(b.last == 8)
            var drained: [Int] = []
            while let x = b.removeFirst() { drained.append(x) }
            #expect(drained == [2, 3, 4, 5, 6, 7, 8])
        }

        @Test func removeFirstToEmptyThenReuse() {
            var b = RingBuffer<String>()
            for s in ["a", "b", "c"] { b.append(s) }
            #expect(b.removeFirst() == "a")
            #expect(b.removeFirst() == "b")
            #expect(b.removeFirst() == "c")
            #expect(b.isEmpty)
            #expect(b.first == nil)
            #expect(b.last == nil)
            #expect(b.removeFirst() == nil)
            #expect(b.count == 0, "removing from an empty buffer does not go negative")
            b.append("d")
            #expect(b.count == 1)
            #expect(b.first == "d")
            #expect(b.last == "d")
            #expect(Self.contents(b) == ["d"])
        }

        @Test func shrinkingKeepsContents() {
            var b = RingBuffer<Int>()
            for i in 0..<1_000 { b.append(i) }
            // Draining far below a quarter shrinks the storage several times.
            for i in 0..<990 { #expect(b.removeFirst() == i) }
            #expect(b.count == 10)
            #expect(Self.contents(b) == Array(990..<1_000))
            // Still fully usable after shrinking: append and wrap again.
            for i in 1_000..<1_100 { b.append(i) }
            for i in 990..<1_050 { #expect(b.removeFirst() == i) }
            #expect(Self.contents(b) == Array(1_050..<1_100))
            #expect(b.first == 1_050)
            #expect(b.last == 1_099)
        }

        @Test(arguments: [1, 7, 42] as [UInt64])
        func matchesAnArrayUnderRandomOperations(seed: UInt64) {
            var rng = RecoveryTestRandom(seed: seed)
            var b = RingBuffer<Int>()
            var model: [Int] = []
            var next = 0
            for step in 0..<20_000 {
                // Phases of bursts and drains, so the storage grows and shrinks.
                let appendBias = (step / 2_000) % 2 == 0 ? 70 : 30
                if Int.random(in: 0..<100, using: &rng) < appendBias {
                    b.append(next)
                    model.append(next)
                    next += 1
                } else {
                    let removed = b.removeFirst()
                    let expected = model.isEmpty ? nil : model.removeFirst()
                    #expect(removed == expected)
                }
                #expect(b.count == model.count)
                #expect(b.first == model.first)
                #expect(b.last == model.last)
                if step % 97 == 0 { #expect(Self.contents(b) == model) }
            }
            #expect(Self.contents(b) == model)
        }

        @Test func partitioningIndexOnAscendingValues() {
            var b = RingBuffer<Int>()
            // Put the head in the middle of the storage first, so that the
            // search runs over wrapped positions.
            for i in 0..<5 { b.append(-i) }
            for _ in 0..<5 { _ = b.removeFirst() }
            let values = [10, 20, 20, 30, 40, 50, 60]
            for v in values { b.append(v) }
            #expect(Self.contents(b) == values)
            for x in [Int.min, 0, 9, 10, 15, 19, 20, 21, 30, 45, 59, 60, 61, Int.max] {
                let expected = values.firstIndex { $0 > x } ?? values.count
                #expect(b.partitioningIndex { $0 > x } == expected, "offset > \(x)")
            }
            // ">=" finds the first equal element.
            #expect(b.partitioningIndex { $0 >= 20 } == 1)
        }

        @Test func partitioningIndexOverManySizes() {
            for n in 0..<70 {
                var b = RingBuffer<Int>()
                for i in 0..<n { b.append(3 * i) }
                for x in -1...(3 * n + 1) {
                    let expected = (0..<n).first { 3 * $0 > x } ?? n
                    #expect(b.partitioningIndex { $0 > x } == expected, "n=\(n) x=\(x)")
                }
            }
        }

        final class Token {}

        @Test func removedElementsAreNotRetained() {
            var b = RingBuffer<Token>()
            weak var weakFirst: Token?
            weak var weakSecond: Token?
            do {
                let t1 = Token()
                let t2 = Token()
                weakFirst = t1
                weakSecond = t2
                b.append(t1)
                b.append(t2)
            }
            #expect(weakFirst != nil)
            _ = b.removeFirst()
            #expect(weakFirst == nil, "the buffer lets go of a removed element")
            #expect(weakSecond != nil, "and keeps the others")
            #expect(b.count == 1)
        }
    }
}

// MARK: - EndpointCache

extension RecoveryTests {
    @Suite("Recovery: EndpointCache")
    struct EndpointCacheTests {
        let p = PartitionID(topic: "t", partition: 0)
        let q = PartitionID(topic: "t", partition: 1)

        /// An endpoint whose records move to another partition: what its old
        /// history held is released, so the old partition's coverage must not
        /// claim it, and a resume in the old partition must not get the new one's messages.
        @Test func anEndpointMovingPartitionUncoversWhatItsOldHistoryHeld() throws {
            let cache = EndpointCache(configuration: try configuration())
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            cache.partitionStarted(q, epoch: "e2", offset: 0)
            try put(cache, "/t/a", p, epoch: "e1", offset: 0)
            try put(cache, "/t/a", p, epoch: "e1", offset: 1)
            try put(cache, "/t/a", q, epoch: "e2", offset: 0)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 2)
            #expect(cache.messages(of: "/t/a", in: p, after: -1).isEmpty)
            #expect(cache.messages(of: "/t/a", in: q, after: -1).map(\.offset) == [0])
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: q) == 0)
        }

        @Test func messagesAfterReturnsExactlyTheLaterOffsetsInOrder() throws {
            let cache = EndpointCache(configuration: try configuration())
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            var appended: [Int64: OpaquePointer] = [:]
            for offset in Int64(0)..<20 {
                let endpoint = offset % 2 == 0 ? "/t/a" : "/t/b"
                let f = try frame(endpoint, seq: offset)
                #expect(cache.append(endpoint: endpoint, partition: p, epoch: "e1", offset: offset, frame: f, nowNs: 0))
                appended[offset] = f
            }
            defer { appended.values.forEach { cf_frame_release($0) } }
            let evens = stride(from: Int64(0), to: 20, by: 2).map { $0 }
            let odds = stride(from: Int64(1), to: 20, by: 2).map { $0 }
            for x in Int64(-3)...22 {
                #expect(offsets(cache, "/t/a", after: x) == evens.filter { $0 > x }, "after \(x)")
                #expect(offsets(cache, "/t/b", after: x) == odds.filter { $0 > x }, "after \(x)")
            }
            #expect(offsets(cache, "/t/none", after: -1) == [])
            // The cache shares the very frames it was given.
            for m in cache.messages(of: "/t/a", in: cache.histories["/t/a"]!.partition, after: -1) {
                #expect(m.frame == appended[m.offset])
                let encoded = try bytes(of: m.frame)
                #expect(m.bytes == encoded.count + EndpointCache.entryOverhead)
            }
            #expect(cache.latest(of: "/t/a")?.offset == 18)
            #expect(cache.latest(of: "/t/b")?.offset == 19)
            #expect(cache.latest(of: "/t/none") == nil)
            #expect(cache.epoch(of: "/t/a") == "e1")
            #expect(cache.epoch(of: "/t/none") == nil)
            #expect(cache.totalMessages == 20)
            #expect(cache.totalBytes == heldBytes(cache))
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 0)
            #expect(cache.coveredFrom(endpoint: "/t/none", partition: p) == 0)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: q) == nil, "a partition that never started")
            #expect(cache.partition(ofEpoch: "e1") == p)
            #expect(cache.partition(ofEpoch: "e9") == nil)
            #expect(cache.state(of: p)?.lastOffset == 19)
        }

        @Test func countLimitEvictsOldestAndRaisesCoverage() throws {
            let cache = EndpointCache(configuration: try configuration(maxMessages: 3))
            cache.partitionStarted(p, epoch: "e1", offset: 100)
            for offset in Int64(100)..<103 { try put(cache, "/t/a", p, offset: offset) }
            #expect(offsets(cache, "/t/a") == [100, 101, 102])
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 100, "nothing evicted yet")
            try put(cache, "/t/a", p, offset: 103)
            #expect(offsets(cache, "/t/a") == [101, 102, 103])
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 101)
            for offset in Int64(104)..<110 { try put(cache, "/t/a", p, offset: offset) }
            #expect(offsets(cache, "/t/a") == [107, 108, 109])
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 107)
            #expect(cache.totalMessages == 3)
            #expect(cache.totalBytes == 3 * (try entryBytes("/t/a")))
            // Another endpoint has its own budget.
            try put(cache, "/t/b", p, offset: 110)
            #expect(offsets(cache, "/t/a") == [107, 108, 109])
            #expect(offsets(cache, "/t/b") == [110])
            #expect(cache.coveredFrom(endpoint: "/t/b", partition: p) == 100)
            #expect(cache.totalMessages == 4)
        }

        @Test func byteLimitEvictsOldestAndRaisesCoverage() throws {
            let small = try entryBytes("/t/a", payloadSize: 10)
            let big = try entryBytes("/t/a", payloadSize: 250)
            let cache = EndpointCache(configuration: try configuration(maxBytes: 3 * small + small / 2))
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            for offset in Int64(0)..<5 { try put(cache, "/t/a", p, offset: offset, payloadSize: 10) }
            #expect(offsets(cache, "/t/a") == [2, 3, 4])
            #expect(cache.totalBytes == 3 * small)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 2)
            // One large message pushes out as many small ones as it needs.
            #expect(big > 2 * small && big <= 3 * small + small / 2)
            try put(cache, "/t/a", p, offset: 5, payloadSize: 250)
            #expect(offsets(cache, "/t/a") == [5])
            #expect(cache.totalBytes == big)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 5)
            // A message larger than the limit is not kept at all.
            try put(cache, "/t/a", p, offset: 6, payloadSize: 1_000)
            #expect(offsets(cache, "/t/a") == [])
            #expect(cache.totalBytes == 0)
            #expect(cache.totalMessages == 0)
            #expect(cache.histories["/t/a"] == nil)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 7)
        }

        @Test(arguments: [(0, 1 << 20), (1_000, 0)])
        func zeroLimitCachesNothingAndCoverageMovesPastEachOffset(maxMessages: Int, maxBytes: Int) throws {
            let cache = EndpointCache(configuration: try configuration(maxMessages: maxMessages, maxBytes: maxBytes))
            cache.partitionStarted(p, epoch: "e1", offset: 5)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 5)
            for offset in [Int64(5), 6, 9, 20] {
                #expect(try put(cache, "/t/a", p, offset: offset), "still accepted for publishing")
                #expect(cache.totalMessages == 0)
                #expect(cache.totalBytes == 0)
                #expect(cache.histories.isEmpty)
                #expect(cache.latest(of: "/t/a") == nil)
                #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == offset + 1)
                #expect(cache.coveredFrom(endpoint: "/t/other", partition: p) == offset + 1)
            }
            #expect(try !put(cache, "/t/a", p, offset: 20), "a duplicate is still refused")
        }

        @Test func timeEvictionTakesOnlyExpiredEntriesSoonestFirstWithinBudget() throws {
            let cache = EndpointCache(configuration: try configuration(maxAgeMs: 1_000))
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            try put(cache, "/t/a", p, offset: 0, nowNs: 0)
            try put(cache, "/t/b", p, offset: 1, nowNs: 100 * ms)
            try put(cache, "/t/a", p, offset: 2, nowNs: 200 * ms)
            try put(cache, "/t/c", p, offset: 3, nowNs: 300 * ms)
            try put(cache, "/t/b", p, offset: 4, nowNs: 400 * ms)
            #expect(cache.totalMessages == 5)

            #expect(cache.evictExpired(nowNs: 1_000 * ms - 1, budget: 100) == 0, "nothing is old enough")
            #expect(cache.totalMessages == 5)

            #expect(cache.evictExpired(nowNs: 1_000 * ms, budget: 100) == 1, "exactly at its expiry")
            #expect(offsets(cache, "/t/a") == [2])
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 1)

            #expect(cache.evictExpired(nowNs: 10_000 * ms, budget: 0) == 0)
            #expect(cache.totalMessages == 4)

            // Budget 2: the two soonest to expire (offset 1 of b, then 2 of a).
            #expect(cache.evictExpired(nowNs: 10_000 * ms, budget: 2) == 2)
            #expect(offsets(cache, "/t/a") == [])
            #expect(offsets(cache, "/t/b") == [4])
            #expect(offsets(cache, "/t/c") == [3])
            #expect(cache.histories["/t/a"] == nil, "an emptied history is dropped")
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 3, "the partition floor")
            #expect(cache.coveredFrom(endpoint: "/t/b", partition: p) == 2)
            #expect(cache.coveredFrom(endpoint: "/t/c", partition: p) == 0, "c lost nothing")
            #expect(cache.totalMessages == 2)
            #expect(cache.totalBytes == heldBytes(cache))

            #expect(cache.evictExpired(nowNs: 10_000 * ms, budget: 100) == 2)
            #expect(cache.totalMessages == 0)
            #expect(cache.totalBytes == 0)
            #expect(cache.histories.isEmpty)
            #expect(cache.state(of: p)?.floor == 5)
            #expect(cache.coveredFrom(endpoint: "/t/anything", partition: p) == 5)
            #expect(cache.evictExpired(nowNs: .max, budget: 100) == 0)
        }

        @Test func perPatternMaxAgeDecidesExpiryOrder() throws {
            let cache = EndpointCache(configuration: try configuration(
                maxAgeMs: 100_000, patterns: [("/fast/**", .init(maxAgeMs: 1_000, maxMessages: 1_000, maxBytes: 1 << 20))]))
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            try put(cache, "/slow/x", p, offset: 0, nowNs: 0)
            try put(cache, "/fast/y", p, offset: 1, nowNs: 1_000 * ms)
            #expect(cache.evictExpired(nowNs: 2_000 * ms - 1, budget: 10) == 0)
            #expect(cache.evictExpired(nowNs: 2_000 * ms, budget: 10) == 1)
            #expect(offsets(cache, "/fast/y") == [])
            #expect(offsets(cache, "/slow/x") == [0], "older, but kept longer")
            #expect(cache.evictExpired(nowNs: 100_000 * ms, budget: 10) == 1)
            #expect(cache.totalMessages == 0)
        }

        @Test func globalCapEvictsSoonestToExpireNotOldestToArrive() throws {
            let size = try entryBytes("/slow/x")
            #expect(try entryBytes("/fast/y") == size)
            let cache = EndpointCache(configuration: try configuration(
                maxAgeMs: 100_000, maxTotalBytes: 2 * size,
                patterns: [("/fast/*", .init(maxAgeMs: 1_000, maxMessages: 1_000, maxBytes: 1 << 20))]))
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            try put(cache, "/slow/x", p, offset: 0, nowNs: 0)  // expires at 100 s
            try put(cache, "/fast/y", p, offset: 1, nowNs: 1_000 * ms)  // expires at 2 s
            try put(cache, "/slow/z", p, offset: 2, nowNs: 2_000 * ms)  // over the cap
            #expect(offsets(cache, "/slow/x") == [0])
            #expect(offsets(cache, "/fast/y") == [])
            #expect(offsets(cache, "/slow/z") == [2])
            #expect(cache.totalBytes == 2 * size)
            #expect(cache.coveredFrom(endpoint: "/fast/y", partition: p) == 2)
        }

        @Test func globalCapWithManyEndpoints() throws {
            let endpoints = (0..<2_000).map { String(format: "/e/%04d", $0) }
            let size = try entryBytes(endpoints[0], payloadSize: 16)
            let keep = 1_000
            let cap = keep * size + size / 2
            let cache = EndpointCache(configuration: try configuration(maxTotalBytes: cap))
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            var offset: Int64 = 0
            var overCap = 0
            for _ in 0..<5 {
                for e in endpoints {
                    #expect(try put(cache, e, p, offset: offset, payloadSize: 16, nowNs: UInt64(offset) * 1_000))
                    if cache.totalBytes > cap { overCap += 1 }
                    offset += 1
                }
            }
            #expect(overCap == 0, "totalBytes stays within maxTotalBytes after every append")
            #expect(cache.totalMessages == keep)
            #expect(cache.totalBytes == keep * size)
            #expect(heldBytes(cache) == cache.totalBytes)
            #expect(heldMessages(cache) == cache.totalMessages)
            #expect(cache.histories.count == keep)
            // The newest 1,000 appends survive: offsets 9000..9999, one per endpoint 1000..1999.
            for i in [0, 1, 500, 999] {
                #expect(offsets(cache, endpoints[i]) == [], "endpoint \(i)")
                #expect(cache.coveredFrom(endpoint: endpoints[i], partition: p) == 9_000)
            }
            for i in [1_000, 1_001, 1_500, 1_999] {
                #expect(offsets(cache, endpoints[i]) == [Int64(8_000 + i)], "endpoint \(i)")
                // Its earlier message (offset 6000 + i) was evicted: covered from
                // the floor its new history inherited.
                #expect(cache.coveredFrom(endpoint: endpoints[i], partition: p) == Int64(7_000 + i))
            }
            // Everything expires: the counters return to zero.
            #expect(cache.evictExpired(nowNs: .max, budget: .max) == keep)
            #expect(cache.totalMessages == 0)
            #expect(cache.totalBytes == 0)
            #expect(cache.histories.isEmpty)
            #expect(cache.coveredFrom(endpoint: endpoints[1_999], partition: p) == 10_000)
        }

        @Test func duplicatesAreRefused() throws {
            let cache = EndpointCache(configuration: try configuration())
            cache.partitionStarted(p, epoch: "e1", offset: 10)
            #expect(try put(cache, "/t/a", p, offset: 10))
            #expect(try !put(cache, "/t/a", p, offset: 10), "same offset")
            #expect(try !put(cache, "/t/a", p, offset: 9), "older offset")
            #expect(try !put(cache, "/t/b", p, offset: 10), "same offset, another endpoint of the partition")
            #expect(try put(cache, "/t/a", p, offset: 12), "offsets may skip")
            #expect(try !put(cache, "/t/a", p, offset: 11), "a skipped offset cannot come later")
            #expect(try put(cache, "/t/c", q, offset: 10), "another partition has its own offsets")
            #expect(offsets(cache, "/t/a") == [10, 12])
            #expect(offsets(cache, "/t/b") == [])
            #expect(cache.totalMessages == 3)
            #expect(cache.totalBytes == heldBytes(cache))
            #expect(cache.state(of: p)?.lastOffset == 12)
        }

        @Test func restartWithoutGapKeepsEntries() throws {
            let cache = EndpointCache(configuration: try configuration())
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            for offset in Int64(0)..<5 { try put(cache, "/t/a", p, offset: offset) }
            cache.partitionStarted(p, epoch: "e1", offset: 5)  // right after the last
            #expect(offsets(cache, "/t/a") == [0, 1, 2, 3, 4])
            cache.partitionStarted(p, epoch: "e1", offset: 2)  // rewinds: overlaps, no gap
            #expect(offsets(cache, "/t/a") == [0, 1, 2, 3, 4])
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 0)
            #expect(cache.state(of: p)?.startOffset == 0)
            #expect(try !put(cache, "/t/a", p, offset: 3), "re-read records are duplicates")
            #expect(try !put(cache, "/t/a", p, offset: 4))
            #expect(try put(cache, "/t/a", p, offset: 5))
            #expect(offsets(cache, "/t/a") == [0, 1, 2, 3, 4, 5])
            #expect(cache.totalMessages == 6)
        }

        @Test func restartWithGapStartsAfresh() throws {
            let cache = EndpointCache(configuration: try configuration())
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            for offset in Int64(0)..<5 { try put(cache, "/t/a", p, offset: offset) }
            try put(cache, "/t/b", q, offset: 0)
            cache.partitionStarted(p, epoch: "e1", offset: 7)  // skips 5 and 6
            #expect(offsets(cache, "/t/a") == [])
            #expect(cache.histories["/t/a"] == nil)
            #expect(cache.totalMessages == 1, "the other partition keeps its entry")
            #expect(offsets(cache, "/t/b") == [0])
            #expect(cache.totalBytes == heldBytes(cache))
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 7)
            #expect(cache.state(of: p)?.startOffset == 7)
            #expect(cache.state(of: p)?.lastOffset == 6)
            #expect(cache.partition(ofEpoch: "e1") == p)
        }

        @Test func newEpochDropsEntriesAndReleasesThem() throws {
            let cache = EndpointCache(configuration: try configuration())
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            // Keep this side's references to check the frames stay intact.
            var kept: [(OpaquePointer, [UInt8])] = []
            for offset in Int64(0)..<5 {
                let f = try frame("/t/a", seq: offset, fill: UInt8(offset))
                #expect(cache.append(endpoint: "/t/a", partition: p, epoch: "e1", offset: offset, frame: f, nowNs: 0))
                kept.append((f, try bytes(of: f)))
            }
            defer { kept.forEach { cf_frame_release($0.0) } }
            #expect(cache.totalMessages == 5)
            cache.partitionStarted(p, epoch: "e2", offset: 3)  // no gap, but another offset sequence
            #expect(cache.totalMessages == 0)
            #expect(cache.totalBytes == 0)
            #expect(cache.histories.isEmpty)
            #expect(offsets(cache, "/t/a") == [])
            #expect(cache.epoch(of: "/t/a") == nil)
            #expect(cache.partition(ofEpoch: "e1") == nil)
            #expect(cache.partition(ofEpoch: "e2") == p)
            #expect(cache.state(of: p)?.epoch == "e2")
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 3)
            for (f, original) in kept { #expect(try bytes(of: f) == original, "the cache released only its own reference") }
            // The new sequence starts over: offset 3 is new again.
            #expect(try put(cache, "/t/a", p, epoch: "e2", offset: 3))
            #expect(cache.epoch(of: "/t/a") == "e2")
            #expect(offsets(cache, "/t/a") == [3])
        }

        @Test func recordWithUnannouncedEpochRestartsThePartition() throws {
            let cache = EndpointCache(configuration: try configuration())
            try put(cache, "/t/a", p, epoch: "e1", offset: 40)
            #expect(cache.state(of: p)?.startOffset == 40, "an unannounced partition is covered from its first record")
            #expect(cache.partition(ofEpoch: "e1") == p)
            try put(cache, "/t/a", p, epoch: "e1", offset: 41)
            #expect(try put(cache, "/t/a", p, epoch: "e2", offset: 7), "a new epoch restarts the offsets")
            #expect(offsets(cache, "/t/a") == [7])
            #expect(cache.epoch(of: "/t/a") == "e2")
            #expect(cache.totalMessages == 1)
            #expect(cache.partition(ofEpoch: "e1") == nil)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 7)
        }

        @Test func endpointWithoutHistoryIsCoveredFromThePartitionFloor() throws {
            let cache = EndpointCache(configuration: try configuration(maxAgeMs: 1_000))
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            cache.partitionStarted(q, epoch: "f1", offset: 0)
            try put(cache, "/t/a", p, offset: 0, nowNs: 0)
            try put(cache, "/t/a", p, offset: 1, nowNs: 0)
            try put(cache, "/t/b", p, offset: 2, nowNs: 500 * ms)
            try put(cache, "/t/q", q, offset: 0, nowNs: 0)
            #expect(cache.coveredFrom(endpoint: "/t/c", partition: p) == 0)
            // a's entries expire at 1 s, b's at 1.5 s: a's history is dropped.
            cache.evictExpired(nowNs: 1_000 * ms, budget: 100)
            #expect(cache.histories["/t/a"] == nil)
            #expect(cache.histories["/t/q"] == nil)
            #expect(cache.state(of: p)?.floor == 2)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 2)
            #expect(cache.coveredFrom(endpoint: "/t/c", partition: p) == 2, "no history: the floor")
            #expect(cache.coveredFrom(endpoint: "/t/b", partition: p) == 0, "b's own history lost nothing")
            #expect(cache.state(of: q)?.floor == 1, "each partition has its own floor")
            // A new history inherits the floor, whichever endpoint it is for.
            try put(cache, "/t/c", p, offset: 5, nowNs: 1_000 * ms)
            #expect(cache.coveredFrom(endpoint: "/t/c", partition: p) == 2)
            try put(cache, "/t/a", p, offset: 6, nowNs: 1_000 * ms)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 2)
            #expect(offsets(cache, "/t/a") == [6])
            #expect(cache.coveredFrom(endpoint: "/t/b", partition: p) == 0)
        }

        @Test func firstRecordBeforeTheAnnouncedStartLowersTheStart() throws {
            let cache = EndpointCache(configuration: try configuration())
            cache.partitionStarted(p, epoch: "e1", offset: 100)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 100)
            #expect(try put(cache, "/t/a", p, offset: 95))
            #expect(cache.state(of: p)?.startOffset == 95)
            #expect(cache.state(of: p)?.lastOffset == 95)
            #expect(cache.coveredFrom(endpoint: "/t/a", partition: p) == 95)
            #expect(cache.coveredFrom(endpoint: "/t/b", partition: p) == 95)
            // Once delivering, an earlier record is a duplicate, not a new start.
            #expect(try !put(cache, "/t/a", p, offset: 94))
            #expect(cache.state(of: p)?.startOffset == 95)
            #expect(try put(cache, "/t/a", p, offset: 96))
            #expect(offsets(cache, "/t/a") == [95, 96])
        }

        @Test func perPatternLimitsApplyToMatchingEndpointsOnly() throws {
            let cache = EndpointCache(configuration: try configuration(
                maxMessages: 5,
                patterns: [
                    ("/hot/*", .init(maxAgeMs: 300_000, maxMessages: 1, maxBytes: 1 << 20)),
                    ("/hot/**", .init(maxAgeMs: 300_000, maxMessages: 2, maxBytes: 1 << 20)),
                ]))
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            let endpoints = ["/hot/a", "/hot/a/b", "/hot", "/cold/a", "/hotter/a"]
            var offset: Int64 = 0
            for _ in 0..<10 {
                for e in endpoints {
                    try put(cache, e, p, offset: offset)
                    offset += 1
                }
            }
            #expect(cache.histories["/hot/a"]?.messages.count == 1, "first matching pattern wins")
            #expect(cache.histories["/hot/a/b"]?.messages.count == 2)
            #expect(cache.histories["/hot"]?.messages.count == 2, "/hot/** matches /hot")
            #expect(cache.histories["/cold/a"]?.messages.count == 5)
            #expect(cache.histories["/hotter/a"]?.messages.count == 5)
            #expect(offsets(cache, "/hot/a") == [45])
            #expect(offsets(cache, "/hot/a/b") == [41, 46])
            #expect(offsets(cache, "/cold/a") == [28, 33, 38, 43, 48])
            #expect(cache.histories["/hot/a"]?.limits.maxMessages == 1)
            #expect(cache.histories["/cold/a"]?.limits == cache.configuration.defaults)
            #expect(cache.totalMessages == 1 + 2 + 2 + 5 + 5)
        }

        @Test func endpointMovingToAnotherPartitionStartsANewHistory() throws {
            let cache = EndpointCache(configuration: try configuration())
            cache.partitionStarted(p, epoch: "e1", offset: 0)
            cache.partitionStarted(q, epoch: "f1", offset: 0)
            try put(cache, "/t/a", p, offset: 0)
            try put(cache, "/t/a", p, offset: 1)
            try put(cache, "/t/a", q, epoch: "f1", offset: 0)
            #expect(offsets(cache, "/t/a") == [0])
            #expect(cache.epoch(of: "/t/a") == "f1")
            #expect(cache.histories["/t/a"]?.partition == q)
            #expect(cache.totalMessages == 1)
            #expect(cache.totalBytes == heldBytes(cache))
        }

        @Test func deinitReleasesWhatIsLeft() throws {
            let f = try frame("/t/a", seq: 0, fill: 0x5A)
            defer { cf_frame_release(f) }
            let before = try bytes(of: f)
            do {
                let cache = EndpointCache(configuration: try configuration())
                #expect(cache.append(endpoint: "/t/a", partition: p, epoch: "e1", offset: 0, frame: f, nowNs: 0))
                #expect(cache.totalMessages == 1)
            }
            #expect(try bytes(of: f) == before, "this side's reference survives the cache")
        }

        // MARK: Against a model

        /// A straightforward model of the cache: entries with their expiry,
        /// evicted by the same rules, to compare with after every step.
        struct ModelEntry {
            let endpoint: String
            let offset: Int64
            let bytes: Int
            let expiresNs: UInt64
        }

        @Test(arguments: [11, 23, 2024, 99_991] as [UInt64])
        func matchesAModelUnderRandomTraffic(seed: UInt64) throws {
            var rng = RecoveryTestRandom(seed: seed)
            let partitions = [PartitionID(topic: "t", partition: 0), PartitionID(topic: "t", partition: 1),
                              PartitionID(topic: "u", partition: 0)]
            let endpoints = (0..<24).map { i in i % 3 == 0 ? "/hot/\(i)" : i % 3 == 1 ? "/cold/\(i)" : "/t/\(i)" }
            let partitionOf = Dictionary(uniqueKeysWithValues: endpoints.enumerated().map { ($1, partitions[$0 % 3]) })
            let hot = RecoveryConfiguration.CacheLimits(maxAgeMs: 3, maxMessages: 4, maxBytes: 1 << 20)
            let cold = RecoveryConfiguration.CacheLimits(maxAgeMs: 40, maxMessages: 1_000, maxBytes: 900)
            let defaults = RecoveryConfiguration.CacheLimits(maxAgeMs: 11, maxMessages: 6, maxBytes: 2_000)
            let config = try configuration(
                maxAgeMs: defaults.maxAgeMs, maxMessages: defaults.maxMessages, maxBytes: defaults.maxBytes,
                maxTotalBytes: 6_000, patterns: [("/hot/**", hot), ("/cold/*", cold)])
            let limitsOf = { (e: String) in e.hasPrefix("/hot/") ? hot : e.hasPrefix("/cold/") ? cold : defaults }
            let cache = EndpointCache(configuration: config)

            var entries: [ModelEntry] = []  // in arrival order
            var epochNumber = [PartitionID: Int]()
            var lastOffset = [PartitionID: Int64]()
            var delivering = [PartitionID: Bool]()
            /// Everything appended since the partition last started afresh.
            var delivered = [PartitionID: [(endpoint: String, offset: Int64)]]()
            func epoch(_ id: PartitionID) -> String { "\(id.topic)-\(id.partition)-\(epochNumber[id]!)" }
            func startAfresh(_ id: PartitionID, at offset: Int64) {
                entries.removeAll { partitionOf[$0.endpoint] == id }
                lastOffset[id] = offset - 1
                delivering[id] = false
                delivered[id] = []
            }
            for id in partitions {
                epochNumber[id] = 0
                startAfresh(id, at: Int64.random(in: 0...1_000, using: &rng))
                cache.partitionStarted(id, epoch: epoch(id), offset: lastOffset[id]! + 1)
            }

            // Each step adds a whole number of ms plus 1 ns: no two expiries are equal.
            var now: UInt64 = 0
            for step in 0..<3_000 {
                now += UInt64.random(in: 0...2, using: &rng) * ms + 1
                let roll = Int.random(in: 0..<100, using: &rng)
                if roll < 78 {
                    let e = endpoints.randomElement(using: &rng)!
                    let id = partitionOf[e]!
                    if roll < 4 && delivering[id]! {
                        let old = lastOffset[id]! - Int64.random(in: 0...3, using: &rng)
                        #expect(try !put(cache, e, id, epoch: epoch(id), offset: old, nowNs: now), "step \(step)")
                        continue
                    }
                    let offset = lastOffset[id]! + 1 + Int64.random(in: 0...2, using: &rng)
                    let size = Int.random(in: 0...300, using: &rng)
                    #expect(try put(cache, e, id, epoch: epoch(id), offset: offset, payloadSize: size, nowNs: now))
                    lastOffset[id] = offset
                    delivering[id] = true
                    delivered[id]!.append((e, offset))
                    let limits = limitsOf(e)
                    entries.append(ModelEntry(
                        endpoint: e, offset: offset, bytes: try entryBytes(e, epoch: epoch(id), payloadSize: size),
                        expiresNs: now + UInt64(limits.maxAgeMs) * ms))
                    func own() -> [ModelEntry] { entries.filter { $0.endpoint == e } }
                    while !own().isEmpty
                        && (own().count > limits.maxMessages || own().reduce(0, { $0 + $1.bytes }) > limits.maxBytes)
                    {
                        entries.remove(at: entries.firstIndex { $0.endpoint == e }!)
                    }
                    while entries.reduce(0, { $0 + $1.bytes }) > config.maxTotalBytes {
                        let soonest = entries.indices.min { entries[$0].expiresNs < entries[$1].expiresNs }!
                        entries.remove(at: soonest)
                    }
                } else if roll < 96 {
                    let budget = Int.random(in: 0...6, using: &rng)
                    var expected = 0
                    while expected < budget,
                          let soonest = entries.indices.min(by: { entries[$0].expiresNs < entries[$1].expiresNs }),
                          entries[soonest].expiresNs <= now
                    {
                        entries.remove(at: soonest)
                        expected += 1
                    }
                    #expect(cache.evictExpired(nowNs: now, budget: budget) == expected, "step \(step)")
                } else {
                    let id = partitions.randomElement(using: &rng)!
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0:  // reconnect without gap: keeps everything
                        let offset = lastOffset[id]! + 1 - Int64.random(in: 0...2, using: &rng)
                        cache.partitionStarted(id, epoch: epoch(id), offset: offset)
                    case 1:  // a gap: starts afresh
                        let offset = lastOffset[id]! + 2 + Int64.random(in: 0...5, using: &rng)
                        startAfresh(id, at: offset)
                        cache.partitionStarted(id, epoch: epoch(id), offset: offset)
                    default:  // a new epoch
                        epochNumber[id]! += 1
                        let offset = Int64.random(in: 0...50, using: &rng)
                        startAfresh(id, at: offset)
                        cache.partitionStarted(id, epoch: epoch(id), offset: offset)
                    }
                }

                // Compare.
                #expect(cache.totalMessages == entries.count, "step \(step)")
                #expect(cache.totalBytes == entries.reduce(0) { $0 + $1.bytes }, "step \(step)")
                #expect(cache.totalBytes <= config.maxTotalBytes)
                #expect(heldBytes(cache) == cache.totalBytes)
                for e in endpoints {
                    let id = partitionOf[e]!
                    let expected = entries.filter { $0.endpoint == e }.map(\.offset)
                    let actual = offsets(cache, e)
                    #expect(actual == expected, "step \(step), \(e)")
                    // Soundness of coverage: every record of the endpoint from
                    // the covered offset on is still in the cache.
                    let covered = try #require(cache.coveredFrom(endpoint: e, partition: id))
                    let mustHave = delivered[id]!.filter { $0.endpoint == e && $0.offset >= covered }.map(\.offset)
                    #expect(offsets(cache, e, after: covered - 1) == mustHave, "step \(step), \(e) covered from \(covered)")
                    if let first = actual.first { #expect(covered <= first) }
                    #expect(covered >= cache.state(of: id)!.startOffset)
                }
            }
            // Finally everything expires.
            #expect(cache.evictExpired(nowNs: .max, budget: .max) == entries.count)
            #expect(cache.totalMessages == 0)
            #expect(cache.totalBytes == 0)
            #expect(cache.histories.isEmpty)
        }
    }
}

// MARK: - EndpointPattern

extension RecoveryTests {
    @Suite("Recovery: EndpointPattern")
    struct EndpointPatternTests {
        @Test(arguments: [
            // "**": zero or more whole segments
            ("/a/**", "/a", true),
            ("/a/**", "/a/b", true),
            ("/a/**", "/a/b/c", true),
            ("/a/**", "/ab", false),
            ("/a/**", "/b/a", false),
            ("/**", "/", true),
            ("/**", "/x", true),
            ("/**", "/x/y/z", true),
            ("/**", "/x//y", true),
            ("/**/live", "/live", true),
            ("/**/live", "/scores/nba/live", true),
            ("/**/live", "/scores/live/now", false),
            ("/a/**/b", "/a/b", true),
            ("/a/**/b", "/a/x/y/b", true),
            ("/a/**/b", "/a/b/c", false),
            // "*": exactly one non-empty segment
            ("/a/*", "/a/b", true),
            ("/a/*", "/a", false),
            ("/a/*", "/a/", false),
            ("/a/*", "/a/b/c", false),
            ("/*/live", "/nba/live", true),
            ("/*/live", "/live", false),
            ("/*/live", "//live", false),
            ("/*", "/", false),
            ("/*/*", "/a/b", true),
            ("/*/*", "/a/b/c", false),
            // literals: whole segments, exactly
            ("/a/b", "/a/b", true),
            ("/a/b", "/a/b/", false),
            ("/a/b", "/a/bc", false),
            ("/a/b", "/A/b", false),
            ("/", "/", true),
            ("/", "/a", false),
            ("/scores/*/live", "/scores/nba/live", true),
            ("/scores/*/live", "/scores/nba/dead", false),
            // an endpoint must start with '/'
            ("/**", "a/b", false),
            ("/**", "", false),
        ])
        func matching(pattern: String, endpoint: String, matches: Bool) throws {
            let p = try EndpointPattern(pattern)
            #expect(p.matches(endpoint) == matches, "\(pattern) vs \(endpoint)")
            #expect(p.text == pattern)
            #expect(p.description == pattern)
        }

        @Test(arguments: ["a/b", "", "*", "**/a", "/a*/b", "/a/b*", "/***", "/a/**x", "/*a", "/a/x*y/c"])
        func malformedPatternsThrow(pattern: String) {
            #expect(throws: EndpointError.self, "\(pattern)") { try EndpointPattern(pattern) }
        }

        @Test func errorReasonsExplain() {
            do {
                _ = try EndpointPattern("a/b")
                Issue.record("no error")
            } catch {
                #expect(error.reason.contains("'/'"))
            }
            do {
                _ = try EndpointPattern("/a*/b")
                Issue.record("no error")
            } catch {
                #expect(error.reason.contains("whole segments"))
                #expect(error.reason.contains("a*"))
            }
        }
    }
}

// MARK: - RecoveryConfiguration

extension RecoveryTests {
    @Suite("Recovery: RecoveryConfiguration")
    struct RecoveryConfigurationTests {
        @Test func defaults() throws {
            let c = try recovery("{}")
            #expect(c == RecoveryConfiguration())
            #expect(c.defaults.maxAgeMs == 300_000)
            #expect(c.defaults.maxMessages == 1_000)
            #expect(c.defaults.maxBytes == 1 << 20)
            #expect(c.maxTotalBytes == 256 << 20)
            #expect(c.replayConcurrency == 2)
            #expect(c.maxReplayMessages == 10_000)
            #expect(c.replayTimeoutMs == 10_000)
            #expect(c.resumeWaitMs == 5_000)
            #expect(c.patterns.isEmpty)
            #expect(c.limits(for: "/any/thing") == c.defaults)
            // A missing or null section reads as empty.
            #expect(try RecoveryConfiguration(section: ConfigSection(path: "recovery", value: nil)) == c)
            #expect(try recovery("null") == c)
            #expect(try recovery(#"{"cache": {}, "replay": null}"#) == c)
        }

        @Test func everySettingIsRead() throws {
            let c = try recovery("""
                {"cache": {"max_age_ms": 60000, "max_messages": 50, "max_bytes": 4096, "max_total_bytes": 1048576},
                 "replay": {"max_concurrent": 8, "max_messages": 500, "timeout_ms": 2000, "resume_wait_ms": 0}}
                """)
            #expect(c.defaults == .init(maxAgeMs: 60_000, maxMessages: 50, maxBytes: 4_096))
            #expect(c.maxTotalBytes == 1 << 20)
            #expect(c.replayConcurrency == 8)
            #expect(c.maxReplayMessages == 500)
            #expect(c.replayTimeoutMs == 2_000)
            #expect(c.resumeWaitMs == 0)
        }

        @Test func patternListInOrderInheritingTheCacheDefaults() throws {
            let c = try recovery("""
                {"cache": {"max_age_ms": 60000, "max_messages": 50,
                  "endpoints": [
                    {"pattern": "/scores/*/live", "max_messages": 1},
                    {"pattern": "/scores/**", "max_age_ms": 5000, "max_bytes": 100},
                    {"pattern": "/big/**", "max_messages": 0, "max_age_ms": 0, "max_bytes": 0}
                  ]}}
                """)
            #expect(c.patterns.map(\.pattern.text) == ["/scores/*/live", "/scores/**", "/big/**"])
            #expect(c.patterns[0].limits == .init(maxAgeMs: 60_000, maxMessages: 1, maxBytes: 1 << 20))
            #expect(c.patterns[1].limits == .init(maxAgeMs: 5_000, maxMessages: 50, maxBytes: 100))
            #expect(c.patterns[2].limits == .init(maxAgeMs: 0, maxMessages: 0, maxBytes: 0))
            #expect(c.limits(for: "/scores/nba/live") == c.patterns[0].limits, "first match wins")
            #expect(c.limits(for: "/scores/nba") == c.patterns[1].limits)
            #expect(c.limits(for: "/scores") == c.patterns[1].limits)
            #expect(c.limits(for: "/big") == c.patterns[2].limits)
            #expect(c.limits(for: "/other") == c.defaults)
            #expect(c.defaults == .init(maxAgeMs: 60_000, maxMessages: 50, maxBytes: 1 << 20))
        }

        @Test func rangeEdgesAreAccepted() throws {
            let c = try recovery("""
                {"cache": {"max_age_ms": 604800000, "max_messages": 10000000, "max_bytes": 1099511627776,
                           "max_total_bytes": 0},
                 "replay": {"max_concurrent": 64, "max_messages": 1, "timeout_ms": 100, "resume_wait_ms": 600000}}
                """)
            #expect(c.defaults == .init(maxAgeMs: 7 * 86_400_000, maxMessages: 10_000_000, maxBytes: 1 << 40))
            #expect(c.maxTotalBytes == 0)
            #expect(c.replayConcurrency == 64)
            #expect(c.maxReplayMessages == 1)
            #expect(c.replayTimeoutMs == 100)
            #expect(c.resumeWaitMs == 600_000)
        }

        @Test(arguments: [
            (#"{"cache": {"max_age_ms": -1}}"#, "recovery.cache.max_age_ms"),
            (#"{"cache": {"max_age_ms": 604800001}}"#, "recovery.cache.max_age_ms"),
            (#"{"cache": {"max_messages": 1.5}}"#, "recovery.cache.max_messages"),
            (#"{"cache": {"max_bytes": "1MB"}}"#, "recovery.cache.max_bytes"),
            (#"{"cache": {"max_total_bytes": -5}}"#, "recovery.cache.max_total_bytes"),
            (#"{"cache": {"max_total_bytes": 1099511627777}}"#, "recovery.cache.max_total_bytes"),
            (#"{"cache": 5}"#, "recovery.cache"),
            (#"{"cache": {"endpoints": {"pattern": "/a"}}}"#, "recovery.cache.endpoints"),
            (#"{"cache": {"endpoints": "/a/**"}}"#, "recovery.cache.endpoints"),
            (#"{"cache": {"endpoints": [{}]}}"#, "recovery.cache.endpoints[0].pattern"),
            (#"{"cache": {"endpoints": [{"pattern": 3}]}}"#, "recovery.cache.endpoints[0].pattern"),
            (#"{"cache": {"endpoints": [{"pattern": "a/b"}]}}"#, "recovery.cache.endpoints[0].pattern"),
            (#"{"cache": {"endpoints": [{"pattern": "/a"}, {"pattern": "/a*/b"}]}}"#, "recovery.cache.endpoints[1].pattern"),
            (#"{"cache": {"endpoints": [{"pattern": "/a"}, "/b"]}}"#, "recovery.cache.endpoints[1]"),
            (#"{"cache": {"endpoints": [{"pattern": "/a", "max_messages": -1}]}}"#,
             "recovery.cache.endpoints[0].max_messages"),
            (#"{"cache": {"endpoints": [{"pattern": "/a", "max_age_ms": true}]}}"#,
             "recovery.cache.endpoints[0].max_age_ms"),
            (#"{"replay": {"max_concurrent": 0}}"#, "recovery.replay.max_concurrent"),
            (#"{"replay": {"max_concurrent": 65}}"#, "recovery.replay.max_concurrent"),
            (#"{"replay": {"max_messages": 0}}"#, "recovery.replay.max_messages"),
            (#"{"replay": {"timeout_ms": 99}}"#, "recovery.replay.timeout_ms"),
            (#"{"replay": {"resume_wait_ms": 600001}}"#, "recovery.replay.resume_wait_ms"),
            (#"{"replay": []}"#, "recovery.replay"),
            (#"[]"#, "recovery"),
        ])
        func badValuesNameTheirKeyPath(json: String, key: String) throws {
            let e = try #require(try recoveryError(json), "\(json) was accepted")
            #expect(e.key == key)
            #expect(e.description.hasPrefix(key + ":"))
            #expect(e.problem == nil, "a bad value, not an unknown key")
            #expect(!e.expected.isEmpty)
        }

        @Test func badValueIsQuotedAndTheRangeExplained() throws {
            let e = try #require(try recoveryError(#"{"cache": {"max_messages": 10000001}}"#))
            #expect(e.value == "10000001")
            #expect(e.expected == "an integer from 0 to 10000000")
            let p = try #require(try recoveryError(#"{"cache": {"endpoints": [{"pattern": "/x**"}]}}"#))
            #expect(p.value == "\"/x**\"")
            #expect(p.expected.contains("whole segments"))
            let missing = try #require(try recoveryError(#"{"cache": {"endpoints": [{"max_messages": 1}]}}"#))
            #expect(missing.value == nil)
            #expect(missing.description.contains("missing"))
        }

        @Test(arguments: [
            (#"{"bogus": 1}"#, "recovery.bogus"),
            (#"{"cache": {"max_age": 1}}"#, "recovery.cache.max_age"),
            (#"{"cache": {"endpoints": [{"pattern": "/a", "max_agems": 1}]}}"#, "recovery.cache.endpoints[0].max_agems"),
            (#"{"cache": {"endpoints": [{"pattern": "/a"}, {"pattern": "/b", "max_total_bytes": 1}]}}"#,
             "recovery.cache.endpoints[1].max_total_bytes"),
            (#"{"replay": {"concurrency": 3}}"#, "recovery.replay.concurrency"),
        ])
        func unknownKeysAreRejected(json: String, key: String) throws {
            let e = try #require(try recoveryError(json), "\(json) was accepted")
            #expect(e.key == key)
            #expect(e.problem?.contains("unknown key") == true)
        }

        @Test func unknownKeyErrorListsTheKnownKeys() throws {
            let e = try #require(try recoveryError(#"{"cache": {"maxMessages": 5}}"#))
            let problem = try #require(e.problem)
            for known in ["max_age_ms", "max_messages", "max_bytes", "max_total_bytes", "endpoints"] {
                #expect(problem.contains(known), "\(known) in \(problem)")
            }
        }

        @Test func gatewayConfigurationReadsTheRecoverySection() throws {
            let text = #"""
                {"source": {"plugin": "kafka", "options": {"brokers": "127.0.0.1:9092", "topics": ["t"]}},
                 "recovery": {"cache": {"max_messages": 7, "endpoints": [{"pattern": "/t/**", "max_age_ms": 10}]}}}
                """#
            let c = try GatewayConfiguration.parse(Data(text.utf8), file: "g.json")
            #expect(c.recovery.defaults.maxMessages == 7)
            #expect(c.recovery.limits(for: "/t/k") == .init(maxAgeMs: 10, maxMessages: 7, maxBytes: 1 << 20))
            let bad = #"""
                {"source": {"plugin": "kafka", "options": {"brokers": "127.0.0.1:9092", "topics": ["t"]}},
                 "recovery": {"cache": {"endpoints": [{"pattern": "t/**"}]}}}
                """#
            do {
                _ = try GatewayConfiguration.parse(Data(bad.utf8), file: "g.json")
                Issue.record("accepted a bad pattern")
            } catch {
                #expect(error.description.contains("recovery.cache.endpoints[0].pattern"))
                #expect(error.file == "g.json")
            }
        }
    }
}

// MARK: - ClientProtocol: resume options

extension RecoveryTests {
    @Suite("Recovery: subscribe options and notices")
    struct ClientProtocolResumeTests {
        @Test func subscribeWithFromAndSnapshot() throws {
            let r = try parse(#"{"type":"subscribe","endpoint":"/t/k","id":"s","from":{"epoch":"c1-t-0-3","seq":41},"snapshot":true}"#)
            var options = SubscribeOptions()
            options.resume = ResumePosition(epoch: "c1-t-0-3", seq: 41)
            options.snapshot = true
            #expect(r == .subscribe(endpoint: "/t/k", id: .string("s"), options: options))
        }

        @Test func plainSubscribeHasNoOptions() throws {
            let r = try parse(#"{"type":"subscribe","endpoint":"/t/k"}"#)
            #expect(r == .subscribe(endpoint: "/t/k", id: nil, options: SubscribeOptions()))
            guard case .subscribe(_, _, let options) = r else { Issue.record("not a subscribe"); return }
            #expect(options.resume == nil)
            #expect(options.snapshot == false)
        }

        @Test func nullOptionsAreAbsent() throws {
            let r = try parse(#"{"type":"subscribe","endpoint":"/t/k","from":null,"snapshot":null}"#)
            #expect(r == .subscribe(endpoint: "/t/k", id: nil, options: SubscribeOptions()))
        }

        @Test func snapshotAloneAndSnapshotFalse() throws {
            var on = SubscribeOptions()
            on.snapshot = true
            #expect(try parse(#"{"type":"subscribe","endpoint":"/a","snapshot":true}"#)
                == .subscribe(endpoint: "/a", id: nil, options: on))
            #expect(try parse(#"{"type":"subscribe","endpoint":"/a","snapshot":false}"#)
                == .subscribe(endpoint: "/a", id: nil, options: SubscribeOptions()))
        }

        @Test(arguments: [(-1, Int64(-1)), (0, 0), (7, 7), (9_007_199_254_740_991, 9_007_199_254_740_991)] as [(Double, Int64)])
        func fromSeqIntegers(seq: Double, expected: Int64) throws {
            let text = #"{"type":"subscribe","endpoint":"/a","from":{"epoch":"e","seq":\#(String(format: "%.0f", seq))}}"#
            var options = SubscribeOptions()
            options.resume = ResumePosition(epoch: "e", seq: expected)
            #expect(try parse(text) == .subscribe(endpoint: "/a", id: nil, options: options))
        }

        @Test func fromSeqWithExponentNotationIsAnInteger() throws {
            var options = SubscribeOptions()
            options.resume = ResumePosition(epoch: "e", seq: 1_000)
            #expect(try parse(#"{"type":"subscribe","endpoint":"/a","from":{"epoch":"e","seq":1e3}}"#)
                == .subscribe(endpoint: "/a", id: nil, options: options))
        }

        @Test(arguments: [
            #""seq":1.5"#, #""seq":-2"#, #""seq":-1.5"#, #""seq":"5""#, #""seq":null"#, #""seq":true"#, "",
            #""seq":9007199254740992"#, #""seq":1e20"#, #""seq":1e300"#, #""seq":-1e300"#, #""seq":[1]"#,
        ])
        func badFromSeq(seqField: String) throws {
            let from = seqField.isEmpty ? #"{"epoch":"e"}"# : #"{"epoch":"e",\#(seqField)}"#
            let e = try #require(parseError(#"{"type":"subscribe","endpoint":"/a","id":3,"from":\#(from)}"#),
                                 "accepted \(from)")
            #expect(e.code == .badRequest)
            #expect(e.message.contains("from.seq"))
            #expect(e.id == .number(3))
        }

        @Test(arguments: [#"{"seq":1}"#, #"{"epoch":"","seq":1}"#, #"{"epoch":5,"seq":1}"#, #"{"epoch":null,"seq":1}"#])
        func badFromEpoch(from: String) throws {
            let e = try #require(parseError(#"{"type":"subscribe","endpoint":"/a","id":"i","from":\#(from)}"#))
            #expect(e.code == .badRequest)
            #expect(e.message.contains("from.epoch"))
            #expect(e.id == .string("i"))
        }

        @Test(arguments: [#"5"#, #""e:5""#, #"[]"#, #"true"#])
        func fromMustBeAnObject(from: String) throws {
            let e = try #require(parseError(#"{"type":"subscribe","endpoint":"/a","from":\#(from)}"#))
            #expect(e.code == .badRequest)
            #expect(e.message.contains("\"from\""))
        }

        @Test(arguments: [#""true""#, #"1"#, #"0"#, #"{}"#, #"[]"#])
        func snapshotMustBeABoolean(snapshot: String) throws {
            let e = try #require(parseError(#"{"type":"subscribe","endpoint":"/a","id":1,"snapshot":\#(snapshot)}"#))
            #expect(e.code == .badRequest)
            #expect(e.message.contains("\"snapshot\""))
            #expect(e.id == .number(1))
        }

        // MARK: Notices

        @Test func staleEpochNotice() throws {
            let o = try object(ClientProtocol.staleEpoch(endpoint: "/t/\"k\"", epoch: "old\\1", current: "new-2"))
            #expect(o["type"] as? String == "notice")
            #expect(o["code"] as? String == "stale_epoch")
            #expect(o["endpoint"] as? String == "/t/\"k\"")
            #expect(o["epoch"] as? String == "old\\1")
            #expect(o["current_epoch"] as? String == "new-2")
            #expect((o["message"] as? String)?.isEmpty == false)
            #expect(o["id"] == nil)
        }

        @Test func staleEpochWithoutCurrentIsNull() throws {
            let o = try object(ClientProtocol.staleEpoch(endpoint: "/t/k", epoch: "e", current: nil))
            #expect(o.keys.contains("current_epoch"))
            #expect(o["current_epoch"] is NSNull)
        }

        @Test func gapNotice() throws {
            let text = ClientProtocol.gap(endpoint: "/t/k", epoch: "e1", fromSeq: 17, toSeq: 5_000_000_000,
                                          reason: "no longer in the source's \"log\"")
            let o = try object(text)
            #expect(o["type"] as? String == "notice")
            #expect(o["code"] as? String == "gap")
            #expect(o["endpoint"] as? String == "/t/k")
            #expect(o["epoch"] as? String == "e1")
            #expect((o["from_seq"] as? NSNumber)?.int64Value == 17)
            #expect((o["to_seq"] as? NSNumber)?.int64Value == 5_000_000_000)
            let message = try #require(o["message"] as? String)
            #expect(message.contains("17"))
            #expect(message.contains("5000000000"))
            #expect(message.contains("no longer in the source's \"log\""))
            #expect(text.contains(#""from_seq":17"#), "seqs are JSON integers")
        }

        @Test func replayedMarker() throws {
            let o = try object(ClientProtocol.replayed(endpoint: "/t/é\n", count: 12, source: "cache"))
            #expect(o["type"] as? String == "replayed")
            #expect(o["endpoint"] as? String == "/t/é\n")
            #expect((o["count"] as? NSNumber)?.intValue == 12)
            #expect(o["source"] as? String == "cache")
            #expect(o.count == 4)
            let k = try object(ClientProtocol.replayed(endpoint: "/t/k", count: 0, source: "kafka"))
            #expect((k["count"] as? NSNumber)?.intValue == 0)
            #expect(k["source"] as? String == "kafka")
        }
    }
}

// MARK: - DeliveryFrame.withSnapshotFlag

extension RecoveryTests {
    @Suite("Recovery: snapshot copy of a frame")
    struct SnapshotFlagTests {
        static func snapshotCopy(_ encoded: [UInt8]) -> OpaquePointer? {
            encoded.withUnsafeBytes { DeliveryFrame.withSnapshotFlag($0) }
        }

        static func headerLength(_ encoded: [UInt8]) throws -> Int {
            var h = cf_ws_header()
            let ok = encoded.withUnsafeBufferPointer { cf_ws_parse_header($0.baseAddress, $0.count, &h) }
            try #require(ok == 1)
            return h.header_length
        }

        // Payload sizes give WebSocket headers of 2, 4 and 10 bytes.
        @Test(arguments: [0, 5, 200, 70_000])
        func copyDiffersOnlyInTheSnapshotBit(payloadSize: Int) throws {
            let original = try frame("/scores/live", epoch: "c-t-0-1", seq: 99, payloadSize: payloadSize, fill: 0xFE)
            defer { cf_frame_release(original) }
            let encoded = try bytes(of: original)
            let copy = try #require(Self.snapshotCopy(encoded))
            defer { cf_frame_release(copy) }
            let copied = try bytes(of: copy)
            let header = try Self.headerLength(encoded)
            try #require(copied.count == encoded.count)
            #expect(try Self.headerLength(copied) == header)
            let flagIndex = header + 1
            #expect(encoded[flagIndex] == 0)
            #expect(copied[flagIndex] == 1)
            for i in copied.indices where i != flagIndex && copied[i] != encoded[i] {
                Issue.record("byte \(i) differs: \(copied[i]) vs \(encoded[i])")
                break
            }
            #expect(try bytes(of: original) == encoded, "the original is untouched")
        }

        @Test func otherFlagBitsAreKeptAndASetBitStaysSet() throws {
            for (flags, expected) in [(UInt8(0b1010_0000), UInt8(0b1010_0001)), (1, 1), (0xFF, 0xFF)] {
                let payload: [UInt8] = [1, 2, 3]
                let original = try #require(payload.withUnsafeBytes {
                    DeliveryFrame.make(endpoint: "/t/k", epoch: "e", seq: 1, timestampMs: 2, flags: flags, payload: $0)
                })
                defer { cf_frame_release(original) }
                let encoded = try bytes(of: original)
                let copy = try #require(Self.snapshotCopy(encoded))
                defer { cf_frame_release(copy) }
                var want = encoded
                want[try Self.headerLength(encoded) + 1] = expected
                #expect(try bytes(of: copy) == want, "flags \(flags)")
            }
        }

        @Test func malformedEncodingsAreRefused() throws {
            let original = try frame("/t/k", payloadSize: 300)
            defer { cf_frame_release(original) }
            let encoded = try bytes(of: original)
            #expect(Self.snapshotCopy(Array(encoded.dropLast())) == nil, "truncated payload")
            #expect(Self.snapshotCopy(encoded + [0]) == nil, "trailing byte")
            #expect(Self.snapshotCopy(Array(encoded.prefix(3))) == nil, "incomplete header")
            // A frame whose payload has no flags byte.
            for size in [0, 1] {
                var header = [UInt8](repeating: 0, count: 14)
                let n = header.withUnsafeMutableBufferPointer { cf_ws_write_header($0.baseAddress, 1, 2, UInt64(size)) }
                let tiny = Array(header.prefix(n)) + [UInt8](repeating: 1, count: size)
                #expect(Self.snapshotCopy(tiny) == nil, "payload of \(size) bytes")
            }
            // The smallest acceptable payload: two bytes.
            var header = [UInt8](repeating: 0, count: 14)
            let n = header.withUnsafeMutableBufferPointer { cf_ws_write_header($0.baseAddress, 1, 2, 2) }
            let two = Array(header.prefix(n)) + [1, 0]
            let copy = try #require(Self.snapshotCopy(two))
            defer { cf_frame_release(copy) }
            #expect(try bytes(of: copy) == Array(header.prefix(n)) + [1, 1])
        }
    }
}

// MARK: - ReplayPace

extension RecoveryTests {
    @Suite("Recovery: replay pace")
    struct ReplayPaceTests {
        @Test func waitsOnlyWhenAheadOfItsBudget() {
            var pace = ReplayPace(recordsPerSecond: 1_000, startNs: 1_000_000_000)
            for _ in 0..<100 { pace.recordRead() }
            // 100 records at 1,000/s are due 100 ms after the start.
            #expect(pace.delayNs(nowNs: 1_000_000_000 + 40_000_000) == 60_000_000)
            #expect(pace.delayNs(nowNs: 1_000_000_000 + 100_000_000) == nil)
            #expect(pace.delayNs(nowNs: 1_000_000_000 + 250_000_000) == nil)
        }
    }
}
