import Synchronization

/// One of a connection's places for resumes being read from the source
/// (`ResumeCoordinator.maxReplaysPerConnection`), given back exactly once.
///
/// It is given back *before* the client hears how the resume ended:
/// `replayed` and `replay_failed` both invite the client to resume again at
/// once, and a resume sent the moment one arrives must find the place free.
/// (The read itself ends later: closing its Kafka consumer takes a while.)
/// Whatever path ends the read gives it back again, harmlessly.
final class ReplaySlot: Sendable {
    private let released = Atomic<Bool>(false)
    private let giveBack: @Sendable () -> Void

    init(giveBack: @escaping @Sendable () -> Void) {
        self.giveBack = giveBack
    }

    func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { giveBack() }
    }
}
