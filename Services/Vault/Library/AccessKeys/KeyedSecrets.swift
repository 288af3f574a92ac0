import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// The shape of Warden's long-lived secrets, `<prefix>_<12 hex id>_<43 base64url>`, and their
/// keyed hashes: HMAC-SHA-256 under the vault's access-key hashing key (a platform secret), so that
/// a copy of a table alone cannot even test guesses.
struct KeyedSecrets: Sendable {
    let prefix: String
    /// One key for every kind: the prefix and the table already tell kinds apart.
    let hashKey: AccessKeyHashKey

    init(prefix: String, hashKey: AccessKeyHashKey) {
        self.prefix = prefix
        self.hashKey = hashKey
    }

    /// The hashing key an earlier Warden derived from WARDEN_VAULT_KEY (kept, so its keys stay valid).
    static func legacyHashKey(_ vaultKey: VaultKey) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: vaultKey.key, info: Data("warden api key hashes v1".utf8), outputByteCount: 32)
    }

    func make() -> (id: String, secret: String, key: String) {
        let id = String(AgentTokenIssuer.newTokenID().prefix(12))
        var random = SystemRandomNumberGenerator()
        let secret = Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
        return (id, secret, "\(prefix)_\(id)_\(secret)")
    }

    func hash(_ secret: String) throws(ServiceError) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Data(secret.utf8), using: try hashKey.value))
    }

    /// The id and secret of a presented key, or nil when it is not shaped like one of ours.
    func split(_ key: String) -> (id: String, secret: String)? {
        let parts = key.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == prefix, parts[1].utf8.count == 12, parts[2].utf8.count >= 32, parts[2].utf8.count <= 64 else {
            return nil
        }
        return (String(parts[1]), String(parts[2]))
    }

    /// Marks key `id` of `table` revoked; not found when there is no such unrevoked key.
    static func revoke(_ id: String, in table: String, named what: String, database: DatabasePool, logger: Logger) async throws {
        // `table` is one of ours, never input; the id is bound.
        let rows = try await database.query(
            "UPDATE \(unescaped: table) SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL RETURNING id", logger: logger)
        guard try await rows.collect().count == 1 else { throw ServiceError(.notFound, "no active \(what) with id \(id.prefix(20))") }
    }

    /// Constant-time comparison of a presented secret with a stored hash.
    func matches(_ secret: String, stored: [UInt8]) throws(ServiceError) -> Bool {
        let presented = try hash(secret)
        return presented.count == stored.count && zip(presented, stored).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0
    }
}
