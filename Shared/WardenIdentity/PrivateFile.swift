import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Credentials handed to an operator as a file: readable by its owner only, never world-readable
/// for an instant (created with mode 0600, not chmod-ed afterwards).
public enum PrivateFile {
    public struct WriteError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Writes `text` to `path` with mode 0600. `replacing: false` refuses an existing file (a
    /// credential shown once must not overwrite another); `true` replaces it and resets its mode.
    public static func write(_ text: String, to path: String, replacing: Bool) throws(WriteError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (replacing ? O_TRUNC : O_EXCL), 0o600)
        guard descriptor >= 0 else { throw WriteError(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard fchmod(descriptor, 0o600) == 0 else {
            throw WriteError(description: "cannot make \(path) private: \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            guard result > 0 else { throw WriteError(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
            written += result
        }
    }
}
