import Crypto
import Foundation
import StreamgatePluginAPI
import Synchronization

/// The `static-tokens` authorizer: opaque tokens listed in a JSON file with
/// their rights, for services and tests. The file is re-read when it changes
/// (checked at most once a second), so adding or revoking a token needs no
/// restart. A token not in the file is left to the next authorizer.
///
///     {"tokens": [{"token": "s3cr3t-…", "subject": "scoreboard",
///                  "subscribe": ["/scores/**"], "publish": [],
///                  "expires_at": 1893456000}]}
///
/// Tokens are looked up by their SHA-256 digest, so the time a lookup takes
/// does not depend on how much of a guess matches a real token.
public struct StaticTokensAuthorizerFactory: AuthorizerFactory {
    public let name = "static-tokens"

    public init() {}

    public func makeAuthorizer(options: ConfigSection, context: PluginContext) throws -> any Authorizer {
        let file = try options.requiredString("file", expected: "the path of a JSON tokens file")
        try options.finish()
        let authorizer = StaticTokensAuthorizer(file: file, logger: context.logger)
        do {
            try authorizer.reload()
        } catch {
            throw ConfigurationError(key: options.keyPath("file"), problem: "\(file): \(error.reason)")
        }
        return authorizer
    }
}

final class StaticTokensAuthorizer: Authorizer {
    private struct Table: Sendable {
        let identities: [Data: Identity]
        let modified: Date?
    }

    private let file: WatchedFile
    private let logger: any PluginLogger
    private let table = Mutex<Table>(Table(identities: [:], modified: nil))

    init(file: String, logger: any PluginLogger) {
        self.file = WatchedFile(file)
        self.logger = logger
    }

    func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        guard let token = credentials.token else { return .abstain }
        reloadIfChanged()
        let digest = Data(SHA256.hash(data: Data(token.utf8)))
        guard let identity = table.withLock({ $0.identities[digest] }) else { return .abstain }
        if let expiry = identity.expiresAt, expiry <= Date().timeIntervalSince1970 {
            return .denied(reason: "token of '\(identity.subject)' expired at \(Int64(expiry))")
        }
        return .identified(identity)
    }

    /// Moves on each time the file is re-read, so live connections are checked again.
    func revision() async -> UInt64 {
        reloadIfChanged()
        return file.revision
    }

    private func reloadIfChanged() {
        guard file.changed(since: table.withLock({ $0.modified })) else { return }
        do {
            try reload()
            logger.log(.info, "static-tokens: reloaded \(file.path)")
        } catch {
            logger.log(.error, "static-tokens: keeping the previous tokens, cannot reload \(file.path): \(error.reason)")
        }
    }

    /// Reads the file; throws a reason naming what is wrong and where.
    func reload() throws(EndpointError) {
        let modified = file.modificationDate
        guard let data = FileManager.default.contents(atPath: file.path) else { throw EndpointError("cannot read the file") }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let entries = root["tokens"] as? [[String: Any]]
        else { throw EndpointError("expected {\"tokens\": [{\"token\": ..., \"subject\": ..., \"subscribe\": [...], \"publish\": [...]}]}") }
        var identities: [Data: Identity] = [:]
        let known: Set<String> = ["token", "subject", "subscribe", "publish", "expires_at"]
        for (i, entry) in entries.enumerated() {
            guard let token = entry["token"] as? String, token.utf8.count >= 16 else {
                throw EndpointError("tokens[\(i)].token: a string of at least 16 characters is required")
            }
            if let unknown = entry.keys.sorted().first(where: { !known.contains($0) }) {
                throw EndpointError("tokens[\(i)].\(unknown): unknown key; known keys: \(known.sorted().joined(separator: ", "))")
            }
            if let value = entry["subject"], !(value is String) {
                throw EndpointError("tokens[\(i)].subject: expected a string")
            }
            for action in ["subscribe", "publish"] where entry[action] != nil && !(entry[action] is [String]) {
                throw EndpointError("tokens[\(i)].\(action): expected an array of endpoint patterns")
            }
            if let value = entry["expires_at"], !(value is NSNumber) || value is Bool {
                throw EndpointError("tokens[\(i)].expires_at: expected seconds since the Unix epoch (a number)")
            }
            let subject = entry["subject"] as? String ?? "token-\(i)"
            let rights = try Rights(subscribePatterns: entry["subscribe"] as? [String] ?? [],
                                    publishPatterns: entry["publish"] as? [String] ?? [])
            let expiry = (entry["expires_at"] as? NSNumber)?.doubleValue
            identities[Data(SHA256.hash(data: Data(token.utf8)))] = Identity(subject: subject, rights: rights, expiresAt: expiry)
        }
        table.withLock { $0 = Table(identities: identities, modified: modified) }
        file.reloaded()
    }
}
