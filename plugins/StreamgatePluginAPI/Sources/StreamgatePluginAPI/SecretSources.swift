#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where `ConfigSection.secret` reads references from, without Foundation
/// (the plugin API depends on nothing).
enum Environment {
    static func value(of name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

enum SecretFile {
    /// The file's contents as UTF-8 (at most 1 MiB: a secret, not a data
    /// file), or nil when it cannot be read or is not text.
    static func read(_ path: String) -> String? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        guard ferror(file) == 0, bytes.count <= 1 << 20 else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }
}
