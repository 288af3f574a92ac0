import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// API keys in the vault's schema: a lookup id, an HMAC-SHA-256 of the secret under the vault's
/// access-key hashing key (a copy of the table alone cannot even test guesses), the agent it stands
/// for, an optional expiry and the last use. Keys look like `wdn_<12 hex id>_<43 base64url>`.
package struct APIKeyStore: Sendable {
    package static let migration = Migration(
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

    let database: DatabasePool
    let secrets: KeyedSecrets
    let logger: Logger

    package init(database: DatabasePool, hashKey: AccessKeyHashKey, logger: Logger) {
        self.database = database
        self.secrets = KeyedSecrets(prefix: "wdn", hashKey: hashKey)
        self.logger = logger
    }

    package func create(_ request: APIKeyCreation) async throws -> CreatedAPIKey {
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
            VALUES (\(id), \(ByteBuffer(bytes: try secrets.hash(secret))), \(request.agent), \(request.org), \(request.user), \(scopes), \(expires))
            """,
            logger: logger
        )
        return CreatedAPIKey(id: id, key: key, expiresAt: expires.map { Int64($0.timeIntervalSince1970) })
    }

    /// The agent a presented key stands for; one message for every way a key can fail, so that a
    /// caller learns nothing about which keys exist.
    package func check(_ key: String) async throws -> (id: String, agent: String, org: String, user: String, scopes: [String]) {
        let invalid = ServiceError(.unauthorized, "the client credentials are not valid")
        guard let (id, secret) = secrets.split(key) else { throw invalid }
        let rows = try await database.query(
            "SELECT secret_hash, agent, org, usr, scopes FROM api_keys WHERE id = \(id) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
            logger: logger
        )
        for try await (stored, agent, org, user, scopes) in rows.decode((ByteBuffer, String, String, String, String).self) {
            guard try secrets.matches(secret, stored: Array(stored.readableBytesView)) else { throw invalid }
            try await database.query("UPDATE api_keys SET last_used_at = now() WHERE id = \(id)", logger: logger)
            return (id, agent, org, user, scopes.split(separator: " ").map(String.init))
        }
        throw invalid
    }

    package func revoke(_ id: String) async throws {
        try await KeyedSecrets.revoke(id, in: "api_keys", named: "API key", database: database, logger: logger)
    }
}
