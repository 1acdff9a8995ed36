import Foundation
import Synchronization

/// A file an authorizer re-reads when it changes (a tokens file, a key set):
/// its modification date, looked at no more than once a second however
/// often connections arrive, and a revision that moves on at each re-read
/// (`Authorizer.revision`, so live connections are checked again).
final class WatchedFile: Sendable {
    let path: String
    private let lastCheck = Mutex<Date>(.distantPast)
    private let reloads = Atomic<UInt64>(0)

    init(_ path: String) { self.path = path }

    var modificationDate: Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }

    /// True when a second has passed since the last look and the file's
    /// modification date is not `loaded` (the date of what was read last).
    func changed(since loaded: Date?) -> Bool {
        let now = Date()
        let due = lastCheck.withLock { last -> Bool in
            guard now.timeIntervalSince(last) >= 1 else { return false }
            last = now
            return true
        }
        return due && modificationDate != loaded
    }

    /// Records a successful re-read.
    func reloaded() { reloads.add(1, ordering: .relaxed) }

    var revision: UInt64 { reloads.load(ordering: .relaxed) }
}
