import CFanout

/// Every endpoint's recent messages, bounded per endpoint (age, count,
/// bytes) and in total (bytes). Not thread-safe: `CachedFanout` owns it under
/// its lock.
///
/// Eviction is continuous: each append evicts what its own endpoint no
/// longer keeps, and `evictExpired` (after every batch and on a timer) takes
/// at most a budget of expired entries in expiry order, kept in a heap of
/// endpoints keyed by their oldest entry's expiry. Past `maxTotalBytes` the
/// entries closest to expiry go first.
///
/// The heap's keys are lazy: evicting an endpoint's oldest entry for its
/// own count or byte bound leaves its key at the old, earlier expiry, and
/// the key is corrected only when it reaches the top. A key is never later
/// than the truth, so nothing expires late, and the common eviction (an
/// endpoint at its count bound) costs no heap work at all. The keys live in
/// their own array so sifting reads no history objects.
final class EndpointCache {
    /// Bookkeeping per entry on top of the frame's bytes (entry, frame header).
    static let entryOverhead = 96

    let configuration: RecoveryConfiguration
    private(set) var histories: [String: EndpointHistory] = [:]
    private(set) var partitions: [PartitionID: PartitionState] = [:]
    /// Which partition each current epoch names.
    private var epochs: [String: PartitionID] = [:]
    private var heap: [EndpointHistory] = []
    /// `heapKeys[i]` is `heap[i]`'s key: at most its oldest entry's expiry.
    private var heapKeys: [UInt64] = []
    private(set) var totalBytes = 0
    private(set) var totalMessages = 0
    /// Messages evicted (by age or by a size bound), ever (metrics).
    private(set) var evictions: UInt64 = 0

    init(configuration: RecoveryConfiguration) {
        self.configuration = configuration
    }

    deinit {
        for history in histories.values { releaseAll(history) }
    }

    // MARK: Partitions

    /// A source starts reading a partition at `offset`. A restart that
    /// leaves no gap (same epoch, at or before the next offset) keeps what is
    /// cached; anything else starts the partition afresh. Returns the
    /// endpoints whose cached messages belonged to another epoch of the
    /// partition (its log was replaced), so their subscribers can be told.
    @discardableResult
    func partitionStarted(_ id: PartitionID, epoch: String, offset: Int64) -> [(endpoint: String, epoch: String)] {
        if let current = partitions[id], current.epoch == epoch, offset <= current.lastOffset + 1 { return [] }
        if let old = partitions[id] { epochs.removeValue(forKey: old.epoch) }
        var replaced: [(endpoint: String, epoch: String)] = []
        for history in histories.values where history.partition == id {
            if history.epoch != epoch { replaced.append((history.endpoint, history.epoch)) }
            drop(history)
        }
        partitions[id] = PartitionState(epoch: epoch, startOffset: offset, floor: offset, lastOffset: offset - 1)
        epochs[epoch] = id
        return replaced.sorted { $0.endpoint < $1.endpoint }
    }

    func partition(ofEpoch epoch: String) -> PartitionID? { epochs[epoch] }

    func state(of id: PartitionID) -> PartitionState? { partitions[id] }

    // MARK: Appending

    /// Caches one message (taking a reference to `frame`) unless it is a
    /// duplicate; returns false for a duplicate, which must not be published.
    @discardableResult
    func append(endpoint: String, partition id: PartitionID, epoch: String, offset: Int64, frame: OpaquePointer,
                nowNs: UInt64) -> Bool
    {
        if partitions[id]?.epoch != epoch {
            // A source that never announced the partition: covered from here on.
            partitionStarted(id, epoch: epoch, offset: offset)
        }
        guard var state = partitions[id] else { return false }
        if !state.delivering && offset < state.startOffset {
            // The consumer began before the announced offset (a broker's
            // listed end can be off): covered from where records really begin.
            state = PartitionState(epoch: epoch, startOffset: offset, floor: offset, lastOffset: offset - 1)
        }
        guard offset > state.lastOffset else { return false }
        state.lastOffset = offset
        state.delivering = true
        partitions[id] = state

        var history = histories[endpoint]
        if let existing = history, existing.partition != id || existing.epoch != epoch {
            drop(existing)
            history = nil
        }
        let h = history ?? {
            let created = EndpointHistory(
                endpoint: endpoint, partition: id, epoch: epoch, limits: configuration.limits(for: endpoint),
                evictedThrough: state.floor - 1)
            histories[endpoint] = created
            return created
        }()
        var length = 0
        _ = cf_frame_bytes(frame, &length)
        let entry = CachedMessage(
            offset: offset, frame: cf_frame_retain(frame), bytes: length + Self.entryOverhead,
            expiresNs: nowNs &+ UInt64(h.limits.maxAgeMs) * 1_000_000)
        h.messages.append(entry)
        h.bytes += entry.bytes
        totalBytes += entry.bytes
        totalMessages += 1
        if h.heapIndex < 0 { heapInsert(h) }
        while !h.messages.isEmpty && (h.messages.count > h.limits.maxMessages || h.bytes > h.limits.maxBytes) {
            evictOldest(of: h)
        }
        while totalBytes > configuration.maxTotalBytes, !heap.isEmpty {
            freshenTop()
            evictOldest(of: heap[0])
        }
        return true
    }

    /// Evicts up to `budget` expired entries, soonest-expiring first
    /// (correcting at most 4 x budget + 64 stale keys on the way, so one call
    /// is always short).
    @discardableResult
    func evictExpired(nowNs: UInt64, budget: Int) -> Int {
        var evicted = 0
        var corrected = 0
        let maxCorrections = budget > Int.max / 8 ? Int.max : 4 * budget + 64
        while evicted < budget, let top = heapKeys.first, top <= nowNs {
            let actual = heap[0].messages.first!.expiresNs
            if actual != top {
                // A stale key: the oldest entry left for the endpoint's own bounds.
                corrected += 1
                if corrected > maxCorrections { break }
                heapKeys[0] = actual
                siftDown(0)
                continue
            }
            evictOldest(of: heap[0])
            evicted += 1
        }
        return evicted
    }

    /// Corrects stale keys at the top until the top is the true soonest.
    private func freshenTop() {
        while let top = heapKeys.first {
            let actual = heap[0].messages.first!.expiresNs
            if actual == top { return }
            heapKeys[0] = actual
            siftDown(0)
        }
    }

    // MARK: Reading

    /// The first offset from which `endpoint` (of partition `id`) is complete
    /// in this cache, or nil when the partition has not started here.
    func coveredFrom(endpoint: String, partition id: PartitionID) -> Int64? {
        guard let state = partitions[id] else { return nil }
        if let h = histories[endpoint], h.partition == id, h.epoch == state.epoch {
            return max(state.startOffset, h.evictedThrough + 1)
        }
        return max(state.startOffset, state.floor)
    }

    /// The cached messages of `endpoint` from partition `id` with an offset
    /// above `offset`, oldest first (no references taken).
    func messages(of endpoint: String, in id: PartitionID, after offset: Int64) -> [CachedMessage] {
        guard let h = histories[endpoint], h.partition == id, h.epoch == partitions[id]?.epoch else { return [] }
        let start = h.messages.partitioningIndex { $0.offset > offset }
        return (start..<h.messages.count).map { h.messages[$0] }
    }

    /// The newest cached message of `endpoint`.
    func latest(of endpoint: String) -> CachedMessage? { histories[endpoint]?.messages.last }

    /// The epoch of the partition `endpoint`'s messages come from, when known.
    func epoch(of endpoint: String) -> String? { histories[endpoint]?.epoch }

    /// The partition `endpoint`'s messages come from, when known.
    func partition(of endpoint: String) -> PartitionID? { histories[endpoint]?.partition }

    // MARK: Eviction

    private func evictOldest(of h: EndpointHistory) {
        guard let entry = h.messages.removeFirst() else { return }
        evictions += 1
        cf_frame_release(entry.frame)
        h.bytes -= entry.bytes
        totalBytes -= entry.bytes
        totalMessages -= 1
        h.evictedThrough = max(h.evictedThrough, entry.offset)
        if h.messages.isEmpty { drop(h) }  // else its heap key is now stale (earlier): corrected at the top
    }

    /// Forgets a history; positions up to what it evicted stay uncovered
    /// through its partition's floor.
    private func drop(_ h: EndpointHistory) {
        if histories[h.endpoint] === h { histories.removeValue(forKey: h.endpoint) }
        if var state = partitions[h.partition], state.epoch == h.epoch {
            // Everything it still holds is released too.
            state.floor = max(state.floor, max(h.evictedThrough, h.messages.last?.offset ?? .min) + 1)
            partitions[h.partition] = state
        }
        releaseAll(h)
        if h.heapIndex >= 0 { heapRemove(h) }
    }

    private func releaseAll(_ h: EndpointHistory) {
        while let entry = h.messages.removeFirst() {
            cf_frame_release(entry.frame)
            h.bytes -= entry.bytes
            totalBytes -= entry.bytes
            totalMessages -= 1
        }
    }

    // MARK: Expiry heap (min-heap on each history's oldest expiry)

    private func key(_ i: Int) -> UInt64 { heapKeys[i] }

    private func heapInsert(_ h: EndpointHistory) {
        h.heapIndex = heap.count
        heap.append(h)
        heapKeys.append(h.messages.first?.expiresNs ?? .max)
        siftUp(h.heapIndex)
    }

    private func heapRemove(_ h: EndpointHistory) {
        let i = h.heapIndex
        let last = heap.count - 1
        if i != last { swapAt(i, last) }
        heap.removeLast()
        heapKeys.removeLast()
        h.heapIndex = -1
        if i < heap.count {
            siftDown(i)
            siftUp(i)
        }
    }

    private func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard key(i) < key(parent) else { return }
            swapAt(i, parent)
            i = parent
        }
    }

    private func siftDown(_ start: Int) {
        var i = start
        while true {
            let left = 2 * i + 1
            let right = left + 1
            var smallest = i
            if left < heap.count && key(left) < key(smallest) { smallest = left }
            if right < heap.count && key(right) < key(smallest) { smallest = right }
            guard smallest != i else { return }
            swapAt(i, smallest)
            i = smallest
        }
    }

    private func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        heapKeys.swapAt(a, b)
        heap[a].heapIndex = a
        heap[b].heapIndex = b
    }
}
