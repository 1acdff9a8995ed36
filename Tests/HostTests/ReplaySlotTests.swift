import Dispatch
import Synchronization
import Testing

@testable import streamgate

/// A resume's place is given back exactly once, whichever of its endings
/// (the answer to the client, a failure, the read's end) comes first, even
/// when they race on different threads.
@Suite("ReplaySlot: given back once")
struct ReplaySlotTests {
    @Test func givenBackOnceHoweverOftenReleased() {
        let givenBack = Atomic<Int>(0)
        let slot = ReplaySlot { givenBack.add(1, ordering: .relaxed) }
        #expect(givenBack.load(ordering: .relaxed) == 0)
        slot.release()
        slot.release()
        #expect(givenBack.load(ordering: .relaxed) == 1)
    }

    @Test func racingReleasesGiveItBackOnce() {
        for _ in 0..<200 {
            let givenBack = Atomic<Int>(0)
            let slot = ReplaySlot { givenBack.add(1, ordering: .relaxed) }
            DispatchQueue.concurrentPerform(iterations: 8) { _ in slot.release() }
            #expect(givenBack.load(ordering: .relaxed) == 1)
        }
    }
}
