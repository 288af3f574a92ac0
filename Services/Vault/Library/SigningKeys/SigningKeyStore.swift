import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenIdentity
import WardenServiceKit

/// Signing keys in PostgreSQL. The newest active key signs; every active key validates, so tokens
/// signed before a rotation stay valid until they expire.
package struct SigningKeyStore: Sendable {
    let database: PostgresClient
    let vaultKey: VaultKey
    let logger: Logger

    package init(database: PostgresClient, vaultKey: VaultKey, logger: Logger) {
        self.database = database
        self.vaultKey = vaultKey
        self.logger = logger
    }

    /// The active keys, newest first; creates the first one when there is none (replicas starting
    /// together create exactly one: the check and the insert run under an advisory lock).
    package func activeKeys() async throws -> [SigningKey] {
        let existing = try await load()
        if !existing.isEmpty { return existing }
        try await database.withTransaction(logger: logger) { connection in
            try await connection.advisoryTransactionLock("warden.vault.signing_keys", logger: logger)
            let count = try await connection.count("SELECT count(*) FROM signing_keys WHERE retired_at IS NULL", logger: logger)
            guard count == 0 else { return }
            let key = SigningKey(kid: "k-" + AgentTokenIssuer.newTokenID().prefix(16))
            let sealed = try vaultKey.seal(Array(key.privateKey.rawRepresentation), boundTo: key.kid)
            try await connection.query(
                "INSERT INTO signing_keys (kid, sealed_private_key, public_key) VALUES (\(key.kid), \(ByteBuffer(bytes: sealed)), \(ByteBuffer(bytes: key.publicKey.rawPublicKey)))",
                logger: logger
            )
            logger.info("created the first token signing key", metadata: ["key.id": "\(key.kid)"])
        }
        return try await load()
    }

    /// Adds a new signing key (it signs from now on); the others keep validating for 25 hours,
    /// longer than any token lives, then retire.
    package func rotate() async throws -> [SigningKey] {
        let key = SigningKey(kid: "k-" + AgentTokenIssuer.newTokenID().prefix(16))
        let sealed = try vaultKey.seal(Array(key.privateKey.rawRepresentation), boundTo: key.kid)
        try await database.withTransaction(logger: logger) { connection in
            try await connection.query(
                "INSERT INTO signing_keys (kid, sealed_private_key, public_key) VALUES (\(key.kid), \(ByteBuffer(bytes: sealed)), \(ByteBuffer(bytes: key.publicKey.rawPublicKey)))",
                logger: logger
            )
            try await connection.query(
                "UPDATE signing_keys SET retired_at = now() + interval '25 hours' WHERE retired_at IS NULL AND kid <> \(key.kid)",
                logger: logger
            )
        }
        logger.info("token signing key rotated", metadata: ["key.id": "\(key.kid)"])
        return try await load()
    }

    func load() async throws -> [SigningKey] {
        var keys: [SigningKey] = []
        let rows = try await database.query(
            "SELECT kid, sealed_private_key FROM signing_keys WHERE retired_at IS NULL OR retired_at > now() ORDER BY created_at DESC",
            logger: logger
        )
        for try await (kid, sealed) in rows.decode((String, ByteBuffer).self) {
            do {
                let raw = try vaultKey.open(Array(sealed.readableBytesView), boundTo: kid)
                keys.append(SigningKey(kid: kid, privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw)))
            } catch {
                // Never log key material; the id says which row is unusable.
                logger.error("a signing key cannot be opened with this vault key", metadata: ["key.id": "\(kid)"])
                throw VaultKeyMismatch(kid: kid)
            }
        }
        return keys
    }
}
