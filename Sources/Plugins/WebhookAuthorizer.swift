import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import StreamgatePluginAPI
import Synchronization

/// The `webhook` authorizer: asks the operator's HTTP service. For each new
/// set of credentials it POSTs
///
///     {"token": "...", "api_key": null, "remote_address": "127.0.0.1:53012", "origin": ""}
///
/// and expects 200 with `{"allow": true, "subject": "...", "subscribe":
/// [...], "publish": [...], "expires_at": 1893456000}` or `{"allow":
/// false, "reason": "..."}`. Answers are cached for `cache_seconds` (by a
/// digest of the credentials), so reconnects do not hammer the service. It
/// fails closed: a service that is down, slow (`timeout_ms`) or answers
/// nonsense denies, with the reason. With `recheck_seconds`, live
/// connections are asked about again that often (after the cache expired),
/// so the service can revoke them; off by default, as each re-check is one
/// request per connection.
public struct WebhookAuthorizerFactory: AuthorizerFactory {
    public let name = "webhook"

    public init() {}

    public func makeAuthorizer(options: ConfigSection, context: PluginContext) throws -> any Authorizer {
        let text = try options.requiredString("url", expected: "the URL of the authorization service")
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ConfigurationError(key: options.keyPath("url"), value: "\"\(text)\"", expected: "an http:// or https:// URL")
        }
        let timeoutMs = try options.int("timeout_ms", default: 2_000, range: 50...60_000)
        let cacheSeconds = try options.int("cache_seconds", default: 60, range: 0...86_400)
        let maxCached = try options.int("max_cached", default: 10_000, range: 0...10_000_000)
        let recheckSeconds = try options.int("recheck_seconds", default: 0, range: 0...86_400)
        try options.finish()
        return WebhookAuthorizer(url: url, timeoutMs: timeoutMs, cacheSeconds: Double(cacheSeconds), maxCached: maxCached,
                                 recheckSeconds: Double(recheckSeconds), logger: context.logger)
    }
}

final class WebhookAuthorizer: Authorizer {
    private struct Cached {
        let result: AuthenticationResult
        let until: Date
    }

    private let url: URL
    private let session: URLSession
    private let timeoutMs: Int
    private let cacheSeconds: Double
    private let maxCached: Int
    private let recheckSeconds: Double
    private let logger: any PluginLogger
    private let cache = Mutex<[Data: Cached]>([:])

    init(url: URL, timeoutMs: Int, cacheSeconds: Double, maxCached: Int, recheckSeconds: Double = 0,
         logger: any PluginLogger)
    {
        self.url = url
        self.timeoutMs = timeoutMs
        self.recheckSeconds = recheckSeconds
        // A re-check must reach the service: answers are not kept longer than that.
        self.cacheSeconds = recheckSeconds > 0 ? min(cacheSeconds, recheckSeconds / 2) : cacheSeconds
        self.maxCached = maxCached
        self.logger = logger
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = Double(timeoutMs) / 1000
        configuration.timeoutIntervalForResource = Double(timeoutMs) / 1000
        session = URLSession(configuration: configuration)
    }

    /// Moves on every `recheck_seconds`, so live connections are asked about again.
    func revision() async -> UInt64 {
        recheckSeconds > 0 ? UInt64(Date().timeIntervalSince1970 / recheckSeconds) : 0
    }

    func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        guard credentials.token != nil || credentials.apiKey != nil else { return .abstain }
        let key = Data(SHA256.hash(data: Data("\(credentials.token ?? "")\u{0}\(credentials.apiKey ?? "")".utf8)))
        let now = Date()
        if let hit = cache.withLock({ $0[key] }), hit.until > now { return hit.result }
        let result = await ask(credentials)
        if cacheSeconds > 0, maxCached > 0 {
            cache.withLock { table in
                if table.count >= maxCached {
                    // Expired entries first; if none, any (bounded memory beats a perfect cache).
                    let stale = table.filter { $0.value.until <= now }.map(\.key)
                    if stale.isEmpty, let any = table.keys.first { table.removeValue(forKey: any) }
                    for k in stale { table.removeValue(forKey: k) }
                }
                table[key] = Cached(result: result, until: now.addingTimeInterval(cacheSeconds))
            }
        }
        return result
    }

    private func ask(_ credentials: Credentials) async -> AuthenticationResult {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let body: [String: Any] = [
            "token": credentials.token as Any? ?? NSNull(), "api_key": credentials.apiKey as Any? ?? NSNull(),
            "remote_address": credentials.connection.remoteAddress, "origin": credentials.connection.origin,
        ]
        request.httpBody = try? JSONSerialization.data(withJSONObject: body)
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            logger.log(.warning, "webhook \(url): \(error.localizedDescription)")
            return .denied(reason: "the authorization service did not answer within \(timeoutMs) ms or could not be reached")
        }
        guard let status = (response as? HTTPURLResponse)?.statusCode, status == 200 else {
            return .denied(reason: "the authorization service answered HTTP \((response as? HTTPURLResponse)?.statusCode ?? 0)")
        }
        return Self.decision(from: data)
    }

    /// The service's JSON answer as a decision (anything malformed denies).
    static func decision(from data: Data) -> AuthenticationResult {
        guard let answer = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let allow = answer["allow"] as? Bool
        else { return .denied(reason: "the authorization service's answer has no boolean \"allow\"") }
        guard allow else { return .denied(reason: answer["reason"] as? String ?? "refused by the authorization service") }
        do {
            let rights = try Rights(subscribePatterns: answer["subscribe"] as? [String] ?? [],
                                    publishPatterns: answer["publish"] as? [String] ?? [])
            return .identified(Identity(subject: answer["subject"] as? String ?? "unknown", rights: rights,
                                        expiresAt: (answer["expires_at"] as? NSNumber)?.doubleValue))
        } catch {
            return .denied(reason: "the authorization service's rights: \(error.reason)")
        }
    }
}
