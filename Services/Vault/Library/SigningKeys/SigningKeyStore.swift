import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenIdentity
import WardenServiceKit

/// Signing keys in PostgreSQL, each private key sealed under its own data key in the platform's
/// part of the key hierarchy. The newest active key signs; every active key validates, so tokens
/// signed before a rotation stay valid until they expire.
package struct SigningKeyStore: Sendable {
    let database: DatabasePool
    let keys: KeyHierarchy
    let logger: Logger

    package init(database: DatabasePool, keys: KeyHierarchy, logger: Logger) {
        self.database = database
        self.keys = keys
        self.logger = logger
    }

    static func context(kid: String) -> [UInt8] { Array("signing key\u{0}\(kid)".utf8) }

    /// The active keys, newest first; creates the first one when there is none (replicas starting
    /// together create exactly one: the check and the insert run under an advisory lock).
    package func activeKeys() async throws -> [SigningKey] {
        let existing = try await load()
        if !existing.isEmpty { return existing }
        let orgKey = try await keys.currentKey(of: KeyHierarchy.platformOrg)
        try await database.transaction(logger: logger) { connection in
            try await connection.advisoryTransactionLock("warden.vault.signing_keys", logger: logger)
            let count = try await connection.count("SELECT count(*) FROM signing_keys WHERE retired_at IS NULL", logger: logger)
            guard count == 0 else { return }
            let key = SigningKey(kid: "k-" + AgentTokenIssuer.newTokenID().prefix(16))
            try await insert(key, under: orgKey, on: connection)
            logger.info("created the first token signing key", metadata: ["key.id": "\(key.kid)"])
        }
        return try await load()
    }

    /// Adds a new signing key (it signs from now on); the others keep validating for 25 hours,
    /// longer than any token lives, then retire.
    package func rotate() async throws -> [SigningKey] {
        let key = SigningKey(kid: "k-" + AgentTokenIssuer.newTokenID().prefix(16))
        let orgKey = try await keys.currentKey(of: KeyHierarchy.platformOrg)
        try await database.transaction(logger: logger) { connection in
            try await insert(key, under: orgKey, on: connection)
            try await connection.query(
                "UPDATE signing_keys SET retired_at = now() + interval '25 hours' WHERE retired_at IS NULL AND kid <> \(key.kid)",
                logger: logger
            )
        }
        logger.info("token signing key rotated", metadata: ["key.id": "\(key.kid)"])
        return try await load()
    }

    private func insert(_ key: SigningKey, under orgKey: OrgKey, on connection: PostgresConnection) async throws {
        let sealed = try Envelope.seal(Array(key.privateKey.rawRepresentation), under: orgKey, context: Self.context(kid: key.kid))
        try await connection.query(
            """
            INSERT INTO signing_keys (kid, sealed_private_key, wrapped_data_key, org_key_version, public_key)
            VALUES (\(key.kid), \(ByteBuffer(bytes: sealed.ciphertext)), \(ByteBuffer(bytes: sealed.wrappedDataKey)), \(sealed.orgKeyVersion),
                    \(ByteBuffer(bytes: key.publicKey.rawPublicKey)))
            """,
            logger: logger
        )
    }

    func load() async throws -> [SigningKey] {
        var keys: [SigningKey] = []
        let rows = try await database.query(
            """
            SELECT kid, sealed_private_key, wrapped_data_key, org_key_version FROM signing_keys
            WHERE (retired_at IS NULL OR retired_at > now()) AND org_key_version IS NOT NULL ORDER BY created_at DESC
            """,
            logger: logger
        )
        for try await (kid, sealed, wrapped, version) in rows.decode((String, ByteBuffer, ByteBuffer, Int).self) {
            let envelope = Envelope(
                ciphertext: Array(sealed.readableBytesView), wrappedDataKey: Array(wrapped.readableBytesView), orgKeyVersion: version)
            let orgKey = try await self.keys.key(of: KeyHierarchy.platformOrg, version: version)
            do {
                let raw = try envelope.open(with: orgKey, context: Self.context(kid: kid), record: "token signing key \(kid)")
                keys.append(SigningKey(kid: kid, privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw)))
            } catch {
                // Never log key material; the id says which row is unusable.
                logger.error("a signing key cannot be opened", metadata: ["key.id": "\(kid)"])
                throw error
            }
        }
        return keys
    }

    /// Seals keys stored by an earlier Warden (directly under WARDEN_VAULT_KEY) under the key
    /// hierarchy; `legacy` is needed only while such keys exist.
    func sealUnderHierarchy(legacy: VaultKey?) async throws {
        let rows = try await database.query(
            "SELECT kid, sealed_private_key FROM signing_keys WHERE org_key_version IS NULL", logger: logger
        ).decode((String, ByteBuffer).self).collected()
        guard !rows.isEmpty else { return }
        guard let legacy else {
            throw StartupError("token signing keys stored by an earlier Warden are sealed with WARDEN_VAULT_KEY: set it (once) to move them")
        }
        let orgKey = try await keys.currentKey(of: KeyHierarchy.platformOrg)
        for (kid, sealed) in rows {
            let raw: [UInt8]
            do {
                raw = try legacy.open(Array(sealed.readableBytesView), boundTo: kid)
            } catch {
                throw StartupError(VaultKeyMismatch(kid: kid).description)
            }
            let envelope = try Envelope.seal(raw, under: orgKey, context: Self.context(kid: kid))
            try await database.query(
                """
                UPDATE signing_keys SET sealed_private_key = \(ByteBuffer(bytes: envelope.ciphertext)),
                  wrapped_data_key = \(ByteBuffer(bytes: envelope.wrappedDataKey)), org_key_version = \(envelope.orgKeyVersion)
                WHERE kid = \(kid) AND org_key_version IS NULL
                """, logger: logger)
        }
        logger.info("token signing keys sealed under the key hierarchy", metadata: ["keys": "\(rows.count)"])
    }
}
