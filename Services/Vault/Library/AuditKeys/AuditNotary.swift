import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// Signs audit checkpoints and bases for the audit service, and keeps every statement it signed in
/// the vault's own schema: verification trusts what the vault holds, not the audit schema's copy,
/// so deleting or forging checkpoints there proves nothing. Checkpoints move forward only (a
/// position behind the latest, or another hash at the same position, is refused); a base is signed
/// only where a checkpoint with the same hash was signed longer ago than the chain's retention
/// period, which the vault also holds. The vault builds each statement itself from checked parts:
/// it signs nothing else.
package struct AuditNotary: Sendable {
    let key: AuditSigningKey
    let database: DatabasePool
    let logger: Logger

    package init(key: AuditSigningKey, database: DatabasePool, logger: Logger) {
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
            """,
            // How long each chain keeps its records: held here, so that whoever can write the audit
            // schema cannot shorten it (a base is signed only over a checkpoint older than this).
            "CREATE TABLE audit_retention (chain text PRIMARY KEY, days int NOT NULL CHECK (days > 0))",
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
                // Behind: another replica signed a later head meanwhile; that one stands.
                guard request.position == latest.position, request.hash != latest.hash else { return latest }
                throw ServiceError(.conflict, "another hash was signed at position \(request.position) of this chain")
            }
            if kind == .base {
                // Only over a checkpoint with that hash, signed here longer ago than the chain's retention period.
                var oldEnough = false
                for try await _ in try await connection.query(
                    """
                    SELECT 1 FROM audit_signatures s JOIN audit_retention r ON r.chain = s.chain
                    WHERE s.chain = \(chain) AND s.kind = 'checkpoint' AND s.position = \(request.position) AND s.hash = \(request.hash)
                      AND s.signed_at <= (extract(epoch FROM now()) * 1000)::bigint - r.days::bigint * 86400000
                    """, logger: logger
                ).decode(Int.self) {
                    oldEnough = true
                }
                guard oldEnough else {
                    throw ServiceError(
                        .conflict, "a base needs a checkpoint with that hash signed longer ago than the chain's retention period")
                }
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

    /// The chain's latest base, and its checkpoints after it and after `after`: at most
    /// `pageSize` (ask again after the last for more).
    func signed(_ request: AuditSignedRequest) async throws -> AuditSignedStatements {
        let chain = request.org ?? ""
        var base: AuditCheckpoint?
        for try await row in try await database.query(
            """
            SELECT position, hash, signed_at, key_id, signature FROM audit_signatures
            WHERE chain = \(chain) AND kind = 'base' ORDER BY position DESC LIMIT 1
            """, logger: logger
        ).decode((Int64, String, Int64, String, String).self) {
            base = Self.statement(.base, chain, row)
        }
        var checkpoints: [AuditCheckpoint] = []
        for try await row in try await database.query(
            """
            SELECT position, hash, signed_at, key_id, signature FROM audit_signatures
            WHERE chain = \(chain) AND kind = 'checkpoint' AND position > \(max(request.after, base?.position ?? 0))
            ORDER BY position LIMIT \(AuditSignedStatements.pageSize)
            """, logger: logger
        ).decode((Int64, String, Int64, String, String).self) {
            checkpoints.append(Self.statement(.checkpoint, chain, row))
        }
        return AuditSignedStatements(checkpoints: checkpoints, base: base)
    }

    /// Sets how long a chain keeps its records (nil days: for good).
    func setRetention(_ setting: AuditRetentionSetting) async throws {
        let chain = setting.org ?? ""
        if let org = setting.org, !AuditCheckpoint.isChainName(org) { throw ServiceError(.badRequest, "'\(org.prefix(64))' is not a chain name") }
        if let days = setting.days {
            guard (1...36_500).contains(days) else { throw ServiceError(.badRequest, "days is 1 to 36500") }
            try await database.query(
                "INSERT INTO audit_retention (chain, days) VALUES (\(chain), \(days)) ON CONFLICT (chain) DO UPDATE SET days = excluded.days",
                logger: logger)
        } else {
            try await database.query("DELETE FROM audit_retention WHERE chain = \(chain)", logger: logger)
        }
    }

    static func statement(_ kind: AuditCheckpoint.Kind, _ chain: String, _ row: (Int64, String, Int64, String, String)) -> AuditCheckpoint {
        AuditCheckpoint(
            kind: kind, org: chain.isEmpty ? nil : chain, position: row.0, hash: row.1, signedAt: row.2, keyID: row.3, signature: row.4)
    }
}
