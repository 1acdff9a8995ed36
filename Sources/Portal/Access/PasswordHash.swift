import Crypto
import Foundation
import _CryptoExtras

/// Administrator passwords under scrypt (swift-crypto's extras), stored as
/// `scrypt$N$r$p$salt$hash` (base64) so the cost can be raised later
/// without invalidating stored hashes. The default cost is OWASP's
/// recommendation for scrypt: N = 2^17, r = 8, p = 1 (128 MiB, a few
/// hundred milliseconds per login: slow for a guesser, fine for a person).
struct PasswordHash: Sendable {
    var rounds = 1 << 17
    var blockSize = 8
    var parallelism = 1

    func hash(_ password: String) throws -> String {
        let salt = RandomToken.bytes(16)
        let derived = try derive(password, salt: salt, rounds: rounds, blockSize: blockSize, parallelism: parallelism)
        return ["scrypt", String(rounds), String(blockSize), String(parallelism),
                Data(salt).base64EncodedString(), derived.base64EncodedString()].joined(separator: "$")
    }

    /// True when `password` matches `stored`; a malformed stored hash never matches.
    static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "scrypt", let rounds = Int(parts[1]), let blockSize = Int(parts[2]),
              let parallelism = Int(parts[3]), let salt = Data(base64Encoded: String(parts[4])),
              let expected = Data(base64Encoded: String(parts[5])),
              let derived = try? derive(password, salt: Array(salt), rounds: rounds, blockSize: blockSize, parallelism: parallelism)
        else { return false }
        // Constant time: compare digests of equal length, never the bytes with early exit.
        return Data(SHA256.hash(data: derived)) == Data(SHA256.hash(data: expected)) && derived.count == expected.count
    }

    private static func derive(_ password: String, salt: [UInt8], rounds: Int, blockSize: Int, parallelism: Int) throws -> Data {
        let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: rounds,
                                           blockSize: blockSize, parallelism: parallelism)
        return key.withUnsafeBytes { Data($0) }
    }

    private func derive(_ password: String, salt: [UInt8], rounds: Int, blockSize: Int, parallelism: Int) throws -> Data {
        try Self.derive(password, salt: salt, rounds: rounds, blockSize: blockSize, parallelism: parallelism)
    }
}
