import Crypto
import Foundation
import Synchronization

/// Tokens whose signature has been checked, by the digest of their exact
/// text, with the key that signed them and their claims.
///
/// Every change of the portal's state (a revocation, a mint with a new key,
/// an edited API) makes the host check each live connection again; with
/// tens of thousands of connections, one P-256 signature check each would
/// spend seconds of CPU on every change. A token seen before skips only the
/// signature check, and only while its key is still in the portal's key
/// set: its claims are checked again against the new state every time.
final class VerifiedTokens: Sendable {
    struct Entry: Sendable {
        let keyID: String
        let claims: TokenClaims
        let expiry: Double
    }

    private let entries = Mutex<[SHA256Digest: Entry]>([:])
    let capacity: Int

    init(capacity: Int = 100_000) { self.capacity = capacity }

    static func digest(_ token: String) -> SHA256Digest { SHA256.hash(data: Data(token.utf8)) }

    /// The claims of `token` if it was verified with a key in `keyIDs`.
    func claims(of digest: SHA256Digest, keyIDs: Set<String>) -> TokenClaims? {
        entries.withLock { $0[digest] }.flatMap { keyIDs.contains($0.keyID) ? $0.claims : nil }
    }

    /// Records a verified token. When full, expired entries go first, and
    /// if none had expired the table starts over (it is only a shortcut).
    func insert(_ digest: SHA256Digest, _ entry: Entry, now: Double) {
        entries.withLock { table in
            if table.count >= capacity {
                table = table.filter { $0.value.expiry > now }
                if table.count >= capacity { table.removeAll(keepingCapacity: true) }
            }
            table[digest] = entry
        }
    }

    var count: Int { entries.withLock { $0.count } }
}
