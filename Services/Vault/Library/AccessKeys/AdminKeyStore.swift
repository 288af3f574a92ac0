import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// Platform admin keys (`wda_<id>_<secret>`) in the vault's schema, kept as keyed hashes. The
/// bootstrap creates the first one on an empty system, exactly once whatever the replicas; more
/// are created and revoked through the admin API.
package struct AdminKeyStore: Sendable {
    package static let migration = Migration(
        version: 4,
        name: "admin_keys",
        statements: [
            """
            CREATE TABLE admin_keys (
                id text PRIMARY KEY,
                secret_hash bytea NOT NULL,
                label text NOT NULL,
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
        self.secrets = KeyedSecrets(prefix: "wda", hashKey: hashKey)
        self.logger = logger
    }

    /// The first admin key, when no admin key was ever created (revoked ones count: a system that
    /// had one is not empty); nil otherwise.
    package func bootstrap() async throws -> CreatedAPIKey? {
        try await database.transaction(logger: logger) { connection -> CreatedAPIKey? in
            try await connection.advisoryTransactionLock("warden.vault.admin_keys", logger: logger)
            let existing = try await connection.count("SELECT count(*) FROM admin_keys", logger: logger)
            guard existing == 0 else { return nil }
            let (id, secret, key) = secrets.make()
            let insert: PostgresQuery =
                "INSERT INTO admin_keys (id, secret_hash, label) VALUES (\(id), \(ByteBuffer(bytes: try secrets.hash(secret))), 'bootstrap')"
            try await connection.query(insert, logger: logger)
            logger.notice("created the bootstrap admin key", metadata: ["key.id": "\(id)"])
            return CreatedAPIKey(id: id, key: key, expiresAt: nil)
        }
    }

    package func create(label: String) async throws -> CreatedAPIKey {
        guard !label.isEmpty, label.count <= 100 else { throw ServiceError(.badRequest, "an admin key needs a label of 1 to 100 characters") }
        let (id, secret, key) = secrets.make()
        try await database.query(
            "INSERT INTO admin_keys (id, secret_hash, label) VALUES (\(id), \(ByteBuffer(bytes: try secrets.hash(secret))), \(label))", logger: logger
        )
        return CreatedAPIKey(id: id, key: key, expiresAt: nil)
    }

    package func list() async throws -> [AdminKey] {
        var keys: [AdminKey] = []
        let rows = try await database.query(
            """
            SELECT id, label, extract(epoch FROM created_at)::bigint, extract(epoch FROM last_used_at)::bigint, extract(epoch FROM revoked_at)::bigint
            FROM admin_keys ORDER BY created_at
            """,
            logger: logger
        )
        for try await (id, label, created, used, revoked) in rows.decode((String, String, Int64, Int64?, Int64?).self) {
            keys.append(AdminKey(id: id, label: label, createdAt: created, lastUsedAt: used, revokedAt: revoked))
        }
        return keys
    }

    /// The id of a presented, unrevoked key; one message for every way a key can fail.
    package func check(_ key: String) async throws -> String {
        let invalid = ServiceError(.unauthorized, "the admin key is not valid")
        guard let (id, secret) = secrets.split(key) else { throw invalid }
        let rows = try await database.query("SELECT secret_hash FROM admin_keys WHERE id = \(id) AND revoked_at IS NULL", logger: logger)
        for try await stored in rows.decode(ByteBuffer.self) {
            guard try secrets.matches(secret, stored: Array(stored.readableBytesView)) else { throw invalid }
            try await database.query("UPDATE admin_keys SET last_used_at = now() WHERE id = \(id)", logger: logger)
            return id
        }
        throw invalid
    }

    package func revoke(_ id: String) async throws {
        try await KeyedSecrets.revoke(id, in: "admin_keys", named: "admin key", database: database, logger: logger)
    }
}
