import CFanout
import Testing

/// The write-delay controller of an overloaded loop (write_pacing.c): what a
/// loop does with its writes for the next period, given how busy it was.
@Suite("cf_write_delay_next")
struct WritePacingTests {
    static let period: UInt64 = 500_000_000

    /// CPU time of `share` of a core over a period, in nanoseconds.
    static func busy(_ share: Double) -> UInt64 { UInt64(Double(period) * share) }

    static func next(_ current: UInt32, busy share: Double, max: UInt32 = 200) -> UInt32 {
        cf_write_delay_next(current, busy(share), period, max)
    }

    @Test func aLoopThatKeepsUpWritesEveryTurn() {
        for share in [0.0, 0.1, 0.5, 0.7, 0.79] {
            #expect(Self.next(0, busy: share) == 0, "busy \(share)")
        }
    }

    @Test func aSaturatedLoopStartsAtTenMillisecondsAndDoublesUpToTheMaximum() {
        var delay: UInt32 = 0
        var steps: [UInt32] = []
        for _ in 0..<7 {
            delay = Self.next(delay, busy: 0.95)
            steps.append(delay)
        }
        #expect(steps == [10, 20, 40, 80, 160, 200, 200])
        #expect(Self.next(0, busy: 0.8) == 10, "exactly 80 % of a core counts as saturated")
        #expect(Self.next(0, busy: 1.0, max: 5) == 5, "a maximum below the first step caps it")
    }

    @Test func betweenHalfAndEightyPercentBusyTheDelayHolds() {
        for share in [0.51, 0.6, 0.75, 0.79] {
            #expect(Self.next(160, busy: share) == 160, "busy \(share)")
        }
    }

    @Test func aLoopWithRoomHalvesItsDelayAndDropsItBelowTenMilliseconds() {
        var delay: UInt32 = 200
        var steps: [UInt32] = []
        while delay > 0 {
            delay = Self.next(delay, busy: 0.3)
            steps.append(delay)
        }
        #expect(steps == [100, 50, 25, 12, 0])
        #expect(Self.next(160, busy: 0.5) == 80, "exactly half busy counts as having room")
    }

    @Test func zeroMaximumTurnsPacingOff() {
        #expect(Self.next(0, busy: 1.0, max: 0) == 0)
        #expect(Self.next(160, busy: 1.0, max: 0) == 0)
    }

    @Test func aLoweredMaximumClampsAHeldDelay() {
        #expect(Self.next(160, busy: 0.7, max: 50) == 50)
    }

    @Test func aZeroLengthPeriodGivesNoDelay() {
        #expect(cf_write_delay_next(40, 0, 0, 200) == 0)
    }
}
