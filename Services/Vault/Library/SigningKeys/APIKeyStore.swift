import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// API keys in the vault's schema: a lookup id, an HMAC-SHA-256 of the secret under a key derived
/// from the vault key (a copy of the table alone cannot even test guesses), the agent it stands
/// for, an optional expiry and the last use. Keys look like `wdn_<12 hex id>_<43 base64url>`.
public struct APIKeyStore: Sendable {
    public static let migration = Migration(
        version: 3,
        name: "api_keys",
        statements: [
            """
            CREATE TABLE api_keys (
                id text PRIMARY KEY,
                secret_hash bytea NOT NULL,
                agent text NOT NULL,
                org text NOT NULL,
                usr text NOT NULL,
                scopes text NOT NULL,
                expires_at timestamptz,
                last_used_at timestamptz,
                revoked_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """
        ]
    )

    let database: PostgresClient
    let secrets: KeyedSecrets
    let logger: Logger

    public init(database: PostgresClient, vaultKey: VaultKey, logger: Logger) {
        self.database = database
        self.secrets = KeyedSecrets(prefix: "wdn", vaultKey: vaultKey)
        self.logger = logger
    }

    public func create(_ request: APIKeyCreation) async throws -> CreatedAPIKey {
        guard !request.agent.isEmpty, !request.org.isEmpty, !request.user.isEmpty else {
            throw ServiceError(.badRequest, "an API key needs an agent, an org and a user")
        }
        if let seconds = request.expiresInSeconds, seconds <= 0 { throw ServiceError(.badRequest, "expiresInSeconds must be positive") }
        let (id, secret, key) = secrets.make()
        let expires = request.expiresInSeconds.map { Date().addingTimeInterval(TimeInterval($0)) }
        let scopes = request.scopes.joined(separator: " ")
        try await database.query(
            """
            INSERT INTO api_keys (id, secret_hash, agent, org, usr, scopes, expires_at)
            VALUES (\(id), \(ByteBuffer(bytes: secrets.hash(secret))), \(request.agent), \(request.org), \(request.user), \(scopes), \(expires))
            """,
            logger: logger
        )
        return CreatedAPIKey(id: id, key: key, expiresAt: expires.map { Int64($0.timeIntervalSince1970) })
    }

    /// The agent a presented key stands for; one message for every way a key can fail, so that a
    /// caller learns nothing about which keys exist.
    public func check(_ key: String) async throws -> (id: String, agent: String, org: String, user: String, scopes: [String]) {
        let invalid = ServiceError(.unauthorized, "the client credentials are not valid")
        guard let (id, secret) = secrets.split(key) else { throw invalid }
        let rows = try await database.query(
            "SELECT secret_hash, agent, org, usr, scopes FROM api_keys WHERE id = \(id) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
            logger: logger
        )
        for try await (stored, agent, org, user, scopes) in rows.decode((ByteBuffer, String, String, String, String).self) {
            guard secrets.matches(secret, stored: Array(stored.readableBytesView)) else { throw invalid }
            try await database.query("UPDATE api_keys SET last_used_at = now() WHERE id = \(id)", logger: logger)
            return (id, agent, org, user, scopes.split(separator: " ").map(String.init))
        }
        throw invalid
    }

    public func revoke(_ id: String) async throws {
        try await KeyedSecrets.revoke(id, in: "api_keys", named: "API key", database: database, logger: logger)
    }
}

/// The shape of Warden's long-lived secrets, `<prefix>_<12 hex id>_<43 base64url>`, and their
/// keyed hashes: HMAC-SHA-256 under a key derived from the vault key, so that a copy of a table
/// alone cannot even test guesses.
struct KeyedSecrets: Sendable {
    let prefix: String
    let hashKey: SymmetricKey

    init(prefix: String, vaultKey: VaultKey) {
        self.prefix = prefix
        // One derivation for every kind: the prefix and the table already tell kinds apart.
        hashKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: vaultKey.key, info: Data("warden api key hashes v1".utf8), outputByteCount: 32)
    }

    func make() -> (id: String, secret: String, key: String) {
        let id = String(AgentTokenIssuer.newTokenID().prefix(12))
        var random = SystemRandomNumberGenerator()
        let secret = Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
        return (id, secret, "\(prefix)_\(id)_\(secret)")
    }

    func hash(_ secret: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Data(secret.utf8), using: hashKey))
    }

    /// The id and secret of a presented key, or nil when it is not shaped like one of ours.
    func split(_ key: String) -> (id: String, secret: String)? {
        let parts = key.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == prefix, parts[1].utf8.count == 12, parts[2].utf8.count >= 32, parts[2].utf8.count <= 64 else { return nil }
        return (String(parts[1]), String(parts[2]))
    }

    /// Marks key `id` of `table` revoked; not found when there is no such unrevoked key.
    static func revoke(_ id: String, in table: String, named what: String, database: PostgresClient, logger: Logger) async throws {
        // `table` is one of ours, never input; the id is bound.
        let rows = try await database.query("UPDATE \(unescaped: table) SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL RETURNING id", logger: logger)
        guard try await rows.collect().count == 1 else { throw ServiceError(.notFound, "no active \(what) with id \(id.prefix(20))") }
    }

    /// Constant-time comparison of a presented secret with a stored hash.
    func matches(_ secret: String, stored: [UInt8]) -> Bool {
        let presented = hash(secret)
        return presented.count == stored.count && zip(presented, stored).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0
    }
}
