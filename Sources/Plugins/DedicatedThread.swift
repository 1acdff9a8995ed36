import Foundation
import Synchronization

/// Set once to ask a blocking loop on another thread to finish.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}

/// Runs `body` on a thread of its own until it returns; cancelling the
/// calling task sets the flag `body` polls. Sources block (in librdkafka, or
/// sleeping between ticks), which must never happen on the Swift concurrency
/// pool.
func runOnDedicatedThread(named name: String, _ body: @escaping @Sendable (StopFlag) -> Void) async {
    let stop = StopFlag()
    await withTaskCancellationHandler {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                body(stop)
                done.resume()
            }
            thread.name = name
            thread.start()
        }
    } onCancel: {
        stop.set()
    }
}
