/// A first-in first-out buffer with O(1) append, removal at the front and
/// access by position: an endpoint's cached messages, oldest first.
struct RingBuffer<Element> {
    private var storage: [Element?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }
    var first: Element? { count == 0 ? nil : storage[head] }
    var last: Element? { count == 0 ? nil : self[count - 1] }

    subscript(position: Int) -> Element {
        precondition(position >= 0 && position < count, "RingBuffer index out of range")
        return storage[(head + position) % storage.count]!
    }

    mutating func append(_ element: Element) {
        if count == storage.count { grow() }
        storage[(head + count) % storage.count] = element
        count += 1
    }

    mutating func removeFirst() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head]
        storage[head] = nil
        head = (head + 1) % storage.count
        count -= 1
        // Give memory back when a burst has drained (a quarter full, at least 64 slots).
        if storage.count >= 64 && count <= storage.count / 4 { shrink() }
        return element
    }

    /// The first position whose element satisfies `isAfter`, which must be
    /// false then true along the buffer (e.g. "offset > x" on ascending offsets).
    func partitioningIndex(where isAfter: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if isAfter(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }

    private mutating func grow() { resize(to: Swift.max(4, storage.count * 2)) }
    private mutating func shrink() { resize(to: Swift.max(4, storage.count / 2)) }

    private mutating func resize(to capacity: Int) {
        var next = [Element?](repeating: nil, count: capacity)
        for i in 0..<count { next[i] = storage[(head + i) % storage.count] }
        storage = next
        head = 0
    }
}
