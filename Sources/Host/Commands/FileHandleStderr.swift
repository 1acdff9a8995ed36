#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered writes to standard error, usable before logging is set up.
enum FileHandleStderr {
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            _ = Glibc.write(2, bytes.baseAddress, bytes.count)
        }
    }
}
