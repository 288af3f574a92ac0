import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenContracts
import WardenNATS
import WardenServiceKit

/// Rotations, online: reads and writes go on while they run.
///
/// - Root: every org key wrapped by another root (a previous key or provider) is wrapped again by
///   the current one; data keys and values are untouched.
/// - Org: a new org key version wraps new data keys at once; existing data keys are rewrapped in
///   batches; the old version is deleted when nothing uses it any more.
/// - Re-encryption: every live version of one secret is sealed again under a fresh data key.
/// - Shredding: an org's share outside the database is erased, then its keys and records are
///   destroyed; nothing sealed under them opens again, not even from a dump taken before.
///
/// Each announces itself on `KeyHierarchy.invalidations`, so every replica drops its cached keys.
package struct KeyRotation: Sendable {
    let keys: KeyHierarchy
    let database: DatabasePool
    let bus: NATSConnection
    let logger: Logger
    /// Data keys rewrapped per transaction.
    let batchSize: Int

    package init(keys: KeyHierarchy, database: DatabasePool, bus: NATSConnection, logger: Logger, batchSize: Int = 500) {
        self.keys = keys
        self.database = database
        self.bus = bus
        self.logger = logger
        self.batchSize = batchSize
    }

    package func rotateRoot(dryRun: Bool) async throws -> KeyRotationReport {
        let started = ContinuousClock.now
        let moved = try await keys.rewrapUnderCurrentRoot(dryRun: dryRun)
        if !dryRun { announce(org: nil) }
        return KeyRotationReport(dryRun: dryRun, orgKeys: moved, seconds: seconds(since: started))
    }

    package func rotateOrg(_ org: String, dryRun: Bool) async throws -> KeyRotationReport {
        let started = ContinuousClock.now
        if dryRun {
            let count =
                try await database.query(
                    "SELECT count(*) FROM secret_versions WHERE org = \(org) AND org_key_version IS NOT NULL", logger: logger
                ).decode(Int.self).collected().first ?? 0
            let signing =
                org == KeyHierarchy.platformOrg
                ? try await database.query("SELECT count(*) FROM signing_keys WHERE org_key_version IS NOT NULL", logger: logger)
                    .decode(Int.self).collected().first ?? 0 : 0
            return KeyRotationReport(dryRun: true, orgKeys: 1, dataKeys: count + signing, seconds: seconds(since: started))
        }
        let newKey = try await keys.addVersion(of: org)
        announce(org: org)
        var rewrapped = 0
        while true {
            let batch = try await rewrapBatch(org: org, to: newKey)
            rewrapped += batch
            if batch == 0 { break }
        }
        if org == KeyHierarchy.platformOrg { rewrapped += try await rewrapSigningKeys(to: newKey) }
        let retired = try await keys.retireUnused(of: org)
        announce(org: org)
        logger.info(
            "org key rotated",
            metadata: ["org": "\(org)", "org_key.version": "\(newKey.version)", "data_keys": "\(rewrapped)", "org_keys.retired": "\(retired)"])
        return KeyRotationReport(dryRun: false, orgKeys: 1, dataKeys: rewrapped, seconds: seconds(since: started))
    }

    /// Rewraps up to `batchSize` data keys of `org` still under an older version; returns how many.
    private func rewrapBatch(org: String, to newKey: OrgKey) async throws -> Int {
        try await database.transaction(logger: logger) { connection in
            let selected = try await connection.query(
                """
                SELECT path, version, ciphertext, wrapped_data_key, org_key_version FROM secret_versions
                WHERE org = \(org) AND org_key_version < \(newKey.version) LIMIT \(batchSize) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            let rows = try await selected.decode((String, Int, ByteBuffer, ByteBuffer, Int).self).collected()
            for (path, version, ciphertext, wrapped, oldVersion) in rows {
                let oldKey = try await keys.key(of: org, version: oldVersion)
                let envelope = Envelope(
                    ciphertext: Array(ciphertext.readableBytesView), wrappedDataKey: Array(wrapped.readableBytesView), orgKeyVersion: oldVersion)
                let moved = try envelope.rewrapped(
                    from: oldKey, to: newKey, context: SecretStore.context(org: org, path: path, version: version),
                    record: SecretStore.record(org: org, path: path, version: version))
                try await connection.query(
                    """
                    UPDATE secret_versions SET wrapped_data_key = \(ByteBuffer(bytes: moved.wrappedDataKey)), org_key_version = \(newKey.version)
                    WHERE org = \(org) AND path = \(path) AND version = \(version)
                    """, logger: logger)
            }
            return rows.count
        }
    }

    private func rewrapSigningKeys(to newKey: OrgKey) async throws -> Int {
        let rows = try await database.query(
            "SELECT kid, sealed_private_key, wrapped_data_key, org_key_version FROM signing_keys WHERE org_key_version < \(newKey.version)",
            logger: logger
        ).decode((String, ByteBuffer, ByteBuffer, Int).self).collected()
        for (kid, sealed, wrapped, oldVersion) in rows {
            let oldKey = try await keys.key(of: KeyHierarchy.platformOrg, version: oldVersion)
            let envelope = Envelope(
                ciphertext: Array(sealed.readableBytesView), wrappedDataKey: Array(wrapped.readableBytesView), orgKeyVersion: oldVersion)
            let moved = try envelope.rewrapped(
                from: oldKey, to: newKey, context: SigningKeyStore.context(kid: kid), record: "token signing key \(kid)")
            try await database.query(
                """
                UPDATE signing_keys SET wrapped_data_key = \(ByteBuffer(bytes: moved.wrappedDataKey)), org_key_version = \(newKey.version)
                WHERE kid = \(kid) AND org_key_version = \(oldVersion)
                """, logger: logger)
        }
        return rows.count
    }

    /// Seals every live version of a secret again under a fresh data key and the current org key.
    package func reencrypt(_ request: SecretReencryption) async throws -> KeyRotationReport {
        let started = ContinuousClock.now
        let (org, path) = (request.org, request.path)
        let rows = try await database.query(
            """
            SELECT version, ciphertext, wrapped_data_key, org_key_version FROM secret_versions
            WHERE org = \(org) AND path = \(path) AND destroyed_at IS NULL ORDER BY version
            """, logger: logger
        ).decode((Int, ByteBuffer, ByteBuffer, Int).self).collected()
        guard !rows.isEmpty else { throw ServiceError(.notFound, "no secret '\(path)' with live versions in org '\(org)'") }
        if request.dryRun { return KeyRotationReport(dryRun: true, secretVersions: rows.count, seconds: seconds(since: started)) }
        let current = try await keys.currentKey(of: org)
        var sealedAgain = 0
        for (version, _, _, _) in rows {
            // Each version under its row lock, as it is now: a version destroyed meanwhile stays destroyed.
            sealedAgain += try await database.transaction(logger: logger) { connection -> Int in
                let locked = try await connection.query(
                    """
                    SELECT ciphertext, wrapped_data_key, org_key_version FROM secret_versions
                    WHERE org = \(org) AND path = \(path) AND version = \(version) AND destroyed_at IS NULL FOR UPDATE
                    """, logger: logger)
                guard let (ciphertext, wrapped, orgKeyVersion) = try await locked.decode((ByteBuffer, ByteBuffer, Int).self).collected().first else {
                    return 0
                }
                let context = SecretStore.context(org: org, path: path, version: version)
                let envelope = Envelope(
                    ciphertext: Array(ciphertext.readableBytesView), wrappedDataKey: Array(wrapped.readableBytesView), orgKeyVersion: orgKeyVersion)
                let value = try envelope.open(
                    with: try await keys.key(of: org, version: orgKeyVersion), context: context,
                    record: SecretStore.record(org: org, path: path, version: version))
                let sealed = try Envelope.seal(value, under: current, context: context)
                try await connection.query(
                    """
                    UPDATE secret_versions SET ciphertext = \(ByteBuffer(bytes: sealed.ciphertext)),
                      wrapped_data_key = \(ByteBuffer(bytes: sealed.wrappedDataKey)), org_key_version = \(sealed.orgKeyVersion)
                    WHERE org = \(org) AND path = \(path) AND version = \(version) AND destroyed_at IS NULL
                    """, logger: logger)
                return 1
            }
        }
        logger.info("secret re-encrypted", metadata: ["org": "\(org)", "secret.path": "\(path)", "secret.versions": "\(sealedAgain)"])
        return KeyRotationReport(dryRun: false, secretVersions: sealedAgain, seconds: seconds(since: started))
    }

    /// Destroys the org's keys and its secrets: crypto-shredding. Under the org's lock, its share
    /// outside the database goes first; if anything after fails, the org's records already open
    /// nothing, and shredding again finishes the work.
    package func shred(_ request: OrgShredding) async throws -> KeyRotationReport {
        guard request.confirm == request.org else { throw ServiceError(.badRequest, "to destroy org '\(request.org)'s keys, confirm with its name") }
        let started = ContinuousClock.now
        try await keys.prepareShares()
        let (versions, keyVersions, shareErased) = try await database.transaction(logger: logger) { connection in
            try await keys.lock(request.org, on: connection)
            let shareErased = try await keys.eraseShare(of: request.org)
            let deleted = try await connection.query("DELETE FROM secret_versions WHERE org = \(request.org) RETURNING version", logger: logger)
            let versions = try await deleted.collect().count
            try await connection.query("DELETE FROM secrets WHERE org = \(request.org)", logger: logger)
            return (versions, try await keys.destroyKeys(of: request.org, on: connection), shareErased)
        }
        announce(org: request.org)
        logger.notice(
            "org keys destroyed",
            metadata: [
                "org": "\(request.org)", "org_keys": "\(keyVersions.versions)", "org_keys.unbound": "\(keyVersions.unbound)",
                "secret_versions": "\(versions)", "org_key.share_erased": "\(shareErased)",
            ])
        return KeyRotationReport(
            dryRun: false, orgKeys: keyVersions.versions, secretVersions: versions, unboundOrgKeys: keyVersions.unbound, shareErased: shareErased,
            seconds: seconds(since: started))
    }

    private func announce(org: String?) {
        try? bus.publish(KeyHierarchy.invalidations, payload: Data((org ?? "").utf8))
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
