import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// Signs audit checkpoints and bases for the audit service, and keeps every statement it signed in
/// the vault's own schema: verification trusts what the vault holds, not the audit schema's copy,
/// so deleting or forging checkpoints there proves nothing. Checkpoints move forward only (a
/// position behind the latest, or another hash at the same position, is refused); a base is signed
/// only where a checkpoint with the same hash was. The vault builds each statement itself from
/// checked parts: it signs nothing else.
package struct AuditNotary: Sendable {
    let key: AuditSigningKey
    let database: PostgresClient
    let logger: Logger

    package init(key: AuditSigningKey, database: PostgresClient, logger: Logger) {
        self.key = key
        self.database = database
        self.logger = logger
    }

    package static let migration = Migration(
        version: 7,
        name: "audit_signatures",
        statements: [
            """
            CREATE TABLE audit_signatures (
                chain text NOT NULL,
                kind text NOT NULL,
                position bigint NOT NULL,
                hash text NOT NULL,
                signed_at bigint NOT NULL,
                key_id text NOT NULL,
                signature text NOT NULL,
                PRIMARY KEY (chain, kind, position)
            )
            """
        ]
    )

    func sign(_ request: AuditSignRequest) async throws -> AuditCheckpoint {
        if let org = request.org, !AuditCheckpoint.isChainName(org) { throw ServiceError(.badRequest, "'\(org.prefix(64))' is not a chain name") }
        guard request.position > 0, AuditCheckpoint.isChainHash(request.hash) else {
            throw ServiceError(.badRequest, "a statement needs a position above 0 and a 64-digit lowercase hex hash")
        }
        let chain = request.org ?? ""
        let kind = request.kind
        let logger = self.logger
        let key = self.key
        return try await database.transaction(logger: logger) { connection in
            try await connection.advisoryTransactionLock("warden.vault.audit_signatures:\(chain)", logger: logger)
            var latest: AuditCheckpoint?
            for try await row in try await connection.query(
                """
                SELECT position, hash, signed_at, key_id, signature FROM audit_signatures
                WHERE chain = \(chain) AND kind = \(kind.rawValue) ORDER BY position DESC LIMIT 1
                """, logger: logger
            ).decode((Int64, String, Int64, String, String).self) {
                latest = Self.statement(kind, chain, row)
            }
            if let latest, request.position <= latest.position {
                if request.position == latest.position, request.hash == latest.hash { return latest }
                throw ServiceError(
                    .conflict,
                    request.position == latest.position
                        ? "another hash was signed at position \(request.position) of this chain"
                        : "position \(request.position) is behind the latest \(kind.rawValue) (\(latest.position)) of this chain")
            }
            if kind == .base {
                var checkpointed = false
                for try await _ in try await connection.query(
                    """
                    SELECT 1 FROM audit_signatures WHERE chain = \(chain) AND kind = 'checkpoint' AND position = \(request.position)
                      AND hash = \(request.hash)
                    """, logger: logger
                ).decode(Int.self) {
                    checkpointed = true
                }
                guard checkpointed else { throw ServiceError(.conflict, "a base needs a checkpoint signed at that position with that hash") }
            }
            let signedAt = Int64(Date().timeIntervalSince1970 * 1_000)
            let statement = AuditCheckpoint.statement(
                kind: kind, org: request.org, position: request.position, hash: request.hash, signedAt: signedAt)
            let (keyID, signature) = try await key.sign(Data(statement.utf8))
            try await connection.query(
                """
                INSERT INTO audit_signatures (chain, kind, position, hash, signed_at, key_id, signature)
                VALUES (\(chain), \(kind.rawValue), \(request.position), \(request.hash), \(signedAt), \(keyID), \(signature))
                """, logger: logger)
            return AuditCheckpoint(
                kind: kind, org: request.org, position: request.position, hash: request.hash, signedAt: signedAt, keyID: keyID, signature: signature)
        }
    }

    /// The chain's checkpoints after `after`, and its latest base.
    func signed(_ request: AuditSignedRequest) async throws -> AuditSignedStatements {
        let chain = request.org ?? ""
        var checkpoints: [AuditCheckpoint] = []
        for try await row in try await database.query(
            """
            SELECT position, hash, signed_at, key_id, signature FROM audit_signatures
            WHERE chain = \(chain) AND kind = 'checkpoint' AND position > \(request.after) ORDER BY position
            """, logger: logger
        ).decode((Int64, String, Int64, String, String).self) {
            checkpoints.append(Self.statement(.checkpoint, chain, row))
        }
        var base: AuditCheckpoint?
        for try await row in try await database.query(
            """
            SELECT position, hash, signed_at, key_id, signature FROM audit_signatures
            WHERE chain = \(chain) AND kind = 'base' ORDER BY position DESC LIMIT 1
            """, logger: logger
        ).decode((Int64, String, Int64, String, String).self) {
            base = Self.statement(.base, chain, row)
        }
        return AuditSignedStatements(checkpoints: checkpoints, base: base)
    }

    static func statement(_ kind: AuditCheckpoint.Kind, _ chain: String, _ row: (Int64, String, Int64, String, String)) -> AuditCheckpoint {
        AuditCheckpoint(
            kind: kind, org: chain.isEmpty ? nil : chain, position: row.0, hash: row.1, signedAt: row.2, keyID: row.3, signature: row.4)
    }
}
