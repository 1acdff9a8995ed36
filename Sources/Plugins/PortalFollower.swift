import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import StreamgatePluginAPI
import Synchronization

/// Keeps a gateway in step with the portal: polls `GET /api/v1/gateway/state`
/// every `poll_seconds` with the cluster credential (304 while nothing
/// changed), applies each new document at once, and writes it to
/// `state_file`, so a gateway restarted while the portal is down starts
/// with the last state it saw. It never opens up access because the portal
/// is unreachable: it keeps what it had, and says so in the log.
///
/// One follower per portal URL serves both `portal` plugins (`PortalFollowers`).
final class PortalFollower: Sendable {
    struct Settings: Sendable, Equatable {
        let url: URL
        let credential: String
        let stateFile: String
        let pollSeconds: Double
        let timeoutSeconds: Double
    }

    let settings: Settings
    private let logger: any PluginLogger
    private let current = Mutex<PortalState?>(nil)
    /// Moves on with every state applied (the authorizer's revision).
    private let applied = Atomic<UInt64>(0)
    /// Whether the last poll reached the portal (to log outages once, and recoveries).
    private let reachable = Mutex<Bool?>(nil)
    private let stop = StopFlag()
    private let session: URLSession

    init(settings: Settings, logger: any PluginLogger) {
        self.settings = settings
        self.logger = logger
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = settings.timeoutSeconds
        configuration.timeoutIntervalForResource = settings.timeoutSeconds
        session = URLSession(configuration: configuration)
    }

    var state: PortalState? { current.withLock { $0 } }
    var revision: UInt64 { applied.load(ordering: .acquiring) }

    /// Loads the saved state, asks the portal once, then polls on a thread of its own.
    func start() {
        if let data = FileManager.default.contents(atPath: settings.stateFile) {
            do {
                apply(try PortalState(document: data), save: false)
                logger.log(.info, "portal: loaded the saved state (revision \(state?.revision ?? 0)) from \(settings.stateFile)")
            } catch {
                logger.log(.error, "portal: the saved state \(settings.stateFile) is unusable (\(error)); waiting for the portal")
            }
        }
        poll()
        if state == nil {
            logger.log(.error, "portal: no state yet (portal unreachable and nothing saved): every endpoint and token is refused until the portal answers")
        }
        let thread = Thread { [self] in
            while !stop.isSet {
                var waited = 0.0
                while waited < settings.pollSeconds && !stop.isSet {
                    Thread.sleep(forTimeInterval: 0.1)
                    waited += 0.1
                }
                if !stop.isSet { poll() }
            }
        }
        thread.name = "portal-follower"
        thread.start()
    }

    func shutdown() { stop.set() }

    /// When the last on-demand poll happened (`refresh`).
    private let lastRefresh = Mutex<Date>(.distantPast)

    /// Polls now, off the concurrency pool, at most once a second however
    /// often it is asked: a token signed by a key minted after the last
    /// poll then works at once, and a flood of unknown keys costs one
    /// request a second.
    func refresh() async {
        let due = lastRefresh.withLock { last -> Bool in
            guard Date().timeIntervalSince(last) >= 1 else { return false }
            last = Date()
            return true
        }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread { [self] in
                if due {
                    poll()
                } else {
                    // Not due: still wait for a poll in flight, whose answer may hold the key.
                    polling.lock()
                    polling.unlock()
                }
                done.resume()
            }
        }
    }

    /// One request; applies a new document, keeps the old state on any failure.
    /// Held across a whole poll (request and apply): the follower's thread
    /// and an on-demand refresh never interleave, so an older answer can
    /// never land after a newer one.
    private let polling = NSLock()

    func poll() {
        polling.lock()
        defer { polling.unlock() }
        var request = URLRequest(url: settings.url.appendingPathComponent("api/v1/gateway/state"))
        request.setValue("Bearer \(settings.credential)", forHTTPHeaderField: "Authorization")
        if let revision = state?.revision { request.setValue("\"r\(revision)\"", forHTTPHeaderField: "If-None-Match") }
        let result = fetch(request)
        switch result {
        case .success(let (status, data)) where status == 200:
            do {
                let next = try PortalState(document: data)
                let held = state?.revision ?? -1
                if next.revision > held {
                    apply(next, save: true)
                } else if next.revision < held {
                    // The portal's revision only grows; a lower one is an old
                    // answer or another database: never step back (that could
                    // undo a revocation).
                    logger.log(.warning, "portal: it answered revision \(next.revision), older than the \(held) this gateway holds: ignored (if the portal's database was replaced, delete \(settings.stateFile) and restart)")
                }
                markReachable(true, detail: "")
            } catch {
                markReachable(false, detail: "its state document is unusable: \(error)")
            }
        case .success(let (status, _)) where status == 304:
            markReachable(true, detail: "")
        case .success(let (status, data)):
            let body = String(decoding: data.prefix(300), as: UTF8.self)
            markReachable(false, detail: "it answered HTTP \(status) \(body)")
        case .failure(let error):
            markReachable(false, detail: error.localizedDescription)
        }
    }

    private func apply(_ next: PortalState, save: Bool) {
        let previous = current.withLock { state -> Int64? in
            defer { state = next }
            return state?.revision
        }
        applied.add(1, ordering: .releasing)
        if let previous { logger.log(.info, "portal: applied state revision \(next.revision) (was \(previous))") }
        guard save else { return }
        do {
            // Written whole or not at all (a temporary file renamed over it).
            try next.document.write(to: URL(fileURLWithPath: settings.stateFile), options: .atomic)
        } catch {
            logger.log(.warning, "portal: cannot save the state to \(settings.stateFile): \(error)")
        }
    }

    private func markReachable(_ now: Bool, detail: String) {
        let before = reachable.withLock { value -> Bool? in
            defer { value = now }
            return value
        }
        if !now && before != false {
            let holding = state.map { "keeps serving state revision \($0.revision)" } ?? "has no state: everything is refused"
            logger.log(.warning, "portal: \(settings.url) unreachable (\(detail)); the gateway \(holding) until it answers")
        } else if now && before == false {
            logger.log(.notice, "portal: \(settings.url) reachable again")
        }
    }

    /// A blocking request (this runs on the follower's thread, or once at start).
    private func fetch(_ request: URLRequest) -> Result<(Int, Data), any Error> {
        let outcome = Mutex<Result<(Int, Data), any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        session.dataTask(with: request) { data, response, error in
            outcome.withLock {
                if let error {
                    $0 = .failure(error)
                } else {
                    $0 = .success(((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data()))
                }
            }
            done.signal()
        }.resume()
        done.wait()
        return outcome.withLock { $0 } ?? .failure(URLError(.unknown))
    }
}

/// The followers of this process, one per portal URL, so the `portal`
/// mapper and authorizer share one poll and one state.
enum PortalFollowers {
    private static let followers = Mutex<[URL: PortalFollower]>([:])

    /// The follower for `options` (started on first use). The options of
    /// the second plugin must agree with the first's; errors name the key.
    /// With `start` false the options are only checked: the follower
    /// returned is neither shared nor started (no request, no file written).
    static func follower(options: ConfigSection, context: PluginContext, start: Bool = true) throws -> PortalFollower {
        let settings = try settings(options)
        guard start else { return PortalFollower(settings: settings, logger: context.logger) }
        return try followers.withLock { table throws(ConfigurationError) -> PortalFollower in
            if let existing = table[settings.url] {
                guard existing.settings == settings else {
                    throw ConfigurationError(key: options.path, problem: "both portal plugins follow \(settings.url): give them the same url, credential, state_file, poll_seconds and timeout_ms")
                }
                return existing
            }
            let follower = PortalFollower(settings: settings, logger: context.logger)
            table[settings.url] = follower
            follower.start()
            return follower
        }
    }

    static func settings(_ options: ConfigSection) throws(ConfigurationError) -> PortalFollower.Settings {
        let text = try options.requiredString("url", expected: "the portal's base URL, such as \"http://127.0.0.1:8090\"")
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ConfigurationError(key: options.keyPath("url"), value: "\"\(text)\"", expected: "an http:// or https:// URL")
        }
        var credential = try options.string("credential")
        if let file = try options.string("credential_file") {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError(key: options.keyPath("credential_file"), value: "\"\(file)\"", expected: "a readable file")
            }
            credential = String(text.reversed().drop(while: \.isNewline).reversed())
        }
        guard let credential, !credential.isEmpty else {
            throw ConfigurationError(key: options.keyPath("credential_file"), value: nil,
                                     expected: "the file holding the cluster credential the portal expects (or \"credential\")")
        }
        let stateFile = try options.string("state_file", default: "portal-state.json")
        let poll = try options.number("poll_seconds", default: 3, range: 0.2...300)
        let timeoutMs = try options.int("timeout_ms", default: 2_000, range: 100...60_000)
        return PortalFollower.Settings(url: url, credential: credential, stateFile: stateFile, pollSeconds: poll,
                                       timeoutSeconds: Double(timeoutMs) / 1000)
    }
}
