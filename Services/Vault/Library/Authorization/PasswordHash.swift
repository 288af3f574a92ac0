import Crypto
import Foundation
import NIOPosix
import WardenContracts
import WardenIdentity
import _CryptoExtras

/// A password kept as scrypt (memory-hard: N = 2^15, r = 8, p = 1, 32 MiB, about 0.1 s on one core)
/// with a random salt, stored as `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>` (base64url) so that the
/// cost can rise later without losing the hashes made before. Derived on NIO's blocking pool: a
/// sign-in never holds a cooperative thread.
package struct PasswordHash: Sendable, Equatable {
    package var logN: Int
    package var r: Int
    package var p: Int
    package var salt: [UInt8]
    package var hash: [UInt8]

    package static let current = (logN: 15, r: 8, p: 1)
    package static let minimumLength = 12
    package static let maximumLength = 1024

    package var encoded: String {
        "scrypt$\(logN)$\(r)$\(p)$\(Base64URL.encode(salt))$\(Base64URL.encode(hash))"
    }

    package init?(encoded: String) {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "scrypt", let logN = Int(parts[1]), (10...20).contains(logN), let r = Int(parts[2]), (1...32).contains(r),
            let p = Int(parts[3]), (1...16).contains(p), let salt = Base64URL.decode(String(parts[4])), let hash = Base64URL.decode(String(parts[5])),
            hash.count == 32
        else { return nil }
        self.init(logN: logN, r: r, p: p, salt: salt, hash: hash)
    }

    init(logN: Int, r: Int, p: Int, salt: [UInt8], hash: [UInt8]) {
        self.logN = logN
        self.r = r
        self.p = p
        self.salt = salt
        self.hash = hash
    }

    /// What makes a password acceptable: 12 to 1024 characters.
    package static func check(_ password: String) throws(ServiceError) {
        guard password.count >= minimumLength else { throw ServiceError(.badRequest, "a password has at least \(minimumLength) characters") }
        guard password.utf8.count <= maximumLength else { throw ServiceError(.badRequest, "a password has at most \(maximumLength) bytes") }
    }

    package static func make(_ password: String) async throws -> PasswordHash {
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let (logN, r, p) = current
        return PasswordHash(logN: logN, r: r, p: p, salt: salt, hash: try await derive(password, salt: salt, logN: logN, r: r, p: p))
    }

    package func matches(_ password: String) async throws -> Bool {
        let derived = try await Self.derive(password, salt: salt, logN: logN, r: r, p: p)
        return derived.count == hash.count && zip(derived, hash).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    static func derive(_ password: String, salt: [UInt8], logN: Int, r: Int, p: Int) async throws -> [UInt8] {
        try await NIOThreadPool.singleton.runIfActive {
            let key = try KDF.Scrypt.deriveKey(
                from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: 1 << logN, blockSize: r, parallelism: p)
            return key.withUnsafeBytes { Array($0) }
        }
    }
}
