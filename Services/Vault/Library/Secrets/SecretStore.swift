import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import WardenContracts
import WardenServiceKit

/// Secrets per org and path, with versions: each version sealed under its own data key
/// (`Envelope`), bound to its org, path and version. Metadata says who made and changed it, when
/// it expires and was last used; a deleted secret can be undeleted, a destroyed version is gone
/// (its ciphertext and wrapped data key are erased).
package final class SecretStore: Sendable {
    /// The largest value, decoded.
    package static let maximumValueBytes = 64 << 10

    let database: DatabasePool
    let keys: KeyHierarchy
    let logger: Logger
    /// When this replica last recorded a use of each secret: the record is written at most once a
    /// minute per secret, so reads stay reads.
    private let lastRecordedUse = Mutex<[String: ContinuousClock.Instant]>([:])

    package init(database: DatabasePool, keys: KeyHierarchy, logger: Logger) {
        self.database = database
        self.keys = keys
        self.logger = logger
    }

    /// What a secret version's envelope is bound to.
    static func context(org: String, path: String, version: Int) -> [UInt8] {
        Array("secret\u{0}\(org)\u{0}\(path)\u{0}\(version)".utf8)
    }

    static func record(org: String, path: String, version: Int) -> String { "secret '\(path)' version \(version) of org '\(org)'" }

    // MARK: Writes

    /// Stores a new version (version 1 creates the secret).
    package func write(_ request: SecretWrite) async throws -> SecretMetadata {
        let value = try Self.validated(request)
        do {
            return try await writeOnce(request, value: value)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23503" {
            // The org key version this replica had cached was retired by a rotation meanwhile.
            keys.dropCache(org: request.org)
            return try await writeOnce(request, value: value)
        }
    }

    /// Stores a new version only if `version` is still the latest (nil when another write came
    /// first): for records rewritten from what was read, like a refreshed OAuth grant.
    package func write(_ request: SecretWrite, replacing version: Int) async throws -> SecretMetadata? {
        let value = try Self.validated(request)
        do {
            return try await update(request, value: value, orgKey: try await keys.currentKey(of: request.org), from: version)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23503" {
            keys.dropCache(org: request.org)
            return try await update(request, value: value, orgKey: try await keys.currentKey(of: request.org), from: version)
        }
    }

    private static func validated(_ request: SecretWrite) throws(ServiceError) -> [UInt8] {
        try SecretPath.validate(org: request.org)
        try SecretPath.validate(request.path)
        guard let value = Data(base64Encoded: request.value) else { throw ServiceError(.badRequest, "the value must be base64") }
        guard value.count >= SecretRedactor.minimumSecretBytes else {
            // The gateway takes injected values out of what servers send back; a value this short
            // would match ordinary text, and cannot be scrubbed reliably.
            throw ServiceError(.badRequest, "the value is \(value.count) bytes; a secret has at least \(SecretRedactor.minimumSecretBytes)")
        }
        guard value.count <= Self.maximumValueBytes else {
            throw ServiceError(.badRequest, "the value is \(value.count) bytes; at most \(Self.maximumValueBytes) are stored")
        }
        if let tags = request.tags, tags.count > 32 || tags.contains(where: { $0.isEmpty || $0.utf8.count > 64 }) {
            throw ServiceError(.badRequest, "at most 32 tags of 1 to 64 characters")
        }
        if let description = request.description, description.utf8.count > 1024 {
            throw ServiceError(.badRequest, "the description is over 1024 bytes")
        }
        return Array(value)
    }

    /// Two round trips and no transaction: the version this write would make is read, the value is
    /// sealed for it (its number is bound to the ciphertext), and one statement moves the secret to
    /// that version and stores it, only if no other write took that version first. Writers racing
    /// on one secret fall back to taking its row lock (`writeLocked`), which always makes progress.
    private func writeOnce(_ request: SecretWrite, value: [UInt8]) async throws -> SecretMetadata {
        let orgKey = try await keys.currentKey(of: request.org)
        let (org, path, actor) = (request.org, request.path, request.actor)
        for _ in 0..<2 {
            let found = try await database.query(
                "SELECT current_version, deleted_at IS NOT NULL FROM secrets WHERE org = \(org) AND path = \(path)", logger: logger)
            let current = try await found.decode((Int, Bool).self).collected().first
            if let current, current.1 { throw ServiceError(.conflict, "secret '\(path)' is deleted: undelete it first (or destroy it)") }
            if let current {
                if let metadata = try await update(request, value: value, orgKey: orgKey, from: current.0) { return metadata }
                continue
            }
            let sealed = try Envelope.seal(value, under: orgKey, context: Self.context(org: org, path: path, version: 1))
            let (ciphertext, wrappedKey) = (ByteBuffer(bytes: sealed.ciphertext), ByteBuffer(bytes: sealed.wrappedDataKey))
            let written = try await database.query(
                """
                WITH s AS (
                  INSERT INTO secrets (org, path, current_version, description, tags, created_by, updated_by, expires_at)
                  VALUES (\(org), \(path), 1, nullif(\(request.description), ''), \(request.tags ?? []), \(actor), \(actor), \(request.expiresAt))
                  ON CONFLICT (org, path) DO NOTHING RETURNING \(unescaped: Self.columns)),
                v AS (
                  INSERT INTO secret_versions (org, path, version, ciphertext, wrapped_data_key, org_key_version, created_by)
                  SELECT org, path, 1, \(ciphertext), \(wrappedKey), \(sealed.orgKeyVersion), \(actor) FROM s RETURNING version)
                SELECT \(unescaped: Self.columns) FROM s, v
                """, logger: logger)
            if let metadata = try await Self.metadata(written).first {
                logger.info("secret written", metadata: ["org": "\(org)", "secret.path": "\(path)", "actor": "\(actor)"])
                return metadata
            }
        }
        return try await writeLocked(request, value: value, orgKey: orgKey)
    }

    /// Moves a live secret from version `from` to the next, storing the value sealed for it, in one
    /// statement; nil when the secret is no longer at `from` (or is deleted).
    private func update(_ request: SecretWrite, value: [UInt8], orgKey: OrgKey, from current: Int) async throws -> SecretMetadata? {
        let (org, path, actor, version) = (request.org, request.path, request.actor, current + 1)
        let sealed = try Envelope.seal(value, under: orgKey, context: Self.context(org: org, path: path, version: version))
        let (ciphertext, wrappedKey) = (ByteBuffer(bytes: sealed.ciphertext), ByteBuffer(bytes: sealed.wrappedDataKey))
        let written = try await database.query(
            """
            WITH s AS (
              UPDATE secrets SET current_version = \(version), updated_at = now(), updated_by = \(actor),
                description = coalesce(nullif(\(request.description), ''), CASE WHEN \(request.description) = '' THEN NULL ELSE description END),
                tags = coalesce(\(request.tags), tags),
                expires_at = CASE WHEN \(request.clearsExpiry) THEN NULL ELSE coalesce(\(request.expiresAt), expires_at) END
              WHERE org = \(org) AND path = \(path) AND current_version = \(current) AND deleted_at IS NULL
              RETURNING \(unescaped: Self.columns)),
            v AS (
              INSERT INTO secret_versions (org, path, version, ciphertext, wrapped_data_key, org_key_version, created_by)
              SELECT org, path, \(version), \(ciphertext), \(wrappedKey), \(sealed.orgKeyVersion), \(actor) FROM s RETURNING version)
            SELECT \(unescaped: Self.columns) FROM s, v
            """, logger: logger)
        guard let metadata = try await Self.metadata(written).first else { return nil }
        logger.info("secret written", metadata: ["org": "\(org)", "secret.path": "\(path)", "actor": "\(actor)"])
        return metadata
    }

    /// One transaction: the secret's row (created, or its version moved on, which locks it), then
    /// the sealed version.
    private func writeLocked(_ request: SecretWrite, value: [UInt8], orgKey: OrgKey) async throws -> SecretMetadata {
        let (org, path, actor) = (request.org, request.path, request.actor)
        let metadata = try await database.transaction(logger: logger) { connection -> SecretMetadata in
            let upserted = try await connection.query(
                """
                INSERT INTO secrets (org, path, current_version, description, tags, created_by, updated_by, expires_at)
                VALUES (\(org), \(path), 1, nullif(\(request.description), ''), \(request.tags ?? []), \(actor), \(actor), \(request.expiresAt))
                ON CONFLICT (org, path) DO UPDATE SET current_version = secrets.current_version + 1, updated_at = now(),
                  updated_by = EXCLUDED.updated_by,
                  description = coalesce(EXCLUDED.description, CASE WHEN \(request.description) = '' THEN NULL ELSE secrets.description END),
                  tags = coalesce(\(request.tags), secrets.tags),
                  expires_at = CASE WHEN \(request.clearsExpiry) THEN NULL ELSE coalesce(EXCLUDED.expires_at, secrets.expires_at) END
                WHERE secrets.deleted_at IS NULL
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            guard let metadata = try await Self.metadata(upserted).first else {
                throw ServiceError(.conflict, "secret '\(path)' is deleted: undelete it first (or destroy it)")
            }
            let sealed = try Envelope.seal(value, under: orgKey, context: Self.context(org: org, path: path, version: metadata.currentVersion))
            try await connection.query(
                """
                INSERT INTO secret_versions (org, path, version, ciphertext, wrapped_data_key, org_key_version, created_by)
                VALUES (\(org), \(path), \(metadata.currentVersion), \(ByteBuffer(bytes: sealed.ciphertext)),
                        \(ByteBuffer(bytes: sealed.wrappedDataKey)), \(sealed.orgKeyVersion), \(actor))
                """, logger: logger)
            return metadata
        }
        logger.info("secret written", metadata: ["org": "\(org)", "secret.path": "\(path)", "actor": "\(actor)"])
        return metadata
    }

    package func delete(_ change: SecretChange) async throws -> SecretMetadata {
        try await setDeleted(change, deleted: true)
    }

    package func undelete(_ change: SecretChange) async throws -> SecretMetadata {
        try await setDeleted(change, deleted: false)
    }

    private func setDeleted(_ change: SecretChange, deleted: Bool) async throws -> SecretMetadata {
        try SecretPath.validate(org: change.org)
        try SecretPath.validate(change.path)
        let rows = try await database.query(
            """
            UPDATE secrets SET deleted_at = CASE WHEN \(deleted) THEN now() ELSE NULL END, updated_at = now(), updated_by = \(change.actor)
            WHERE org = \(change.org) AND path = \(change.path) AND (deleted_at IS NULL) = \(deleted)
            RETURNING path
            """, logger: logger)
        guard try await rows.collect().count == 1 else {
            _ = try await show(SecretReference(org: change.org, path: change.path))  // not found, or already in that state
            throw ServiceError(.conflict, "secret '\(change.path)' is \(deleted ? "deleted already" : "not deleted")")
        }
        logger.info(
            deleted ? "secret deleted" : "secret undeleted",
            metadata: ["org": "\(change.org)", "secret.path": "\(change.path)", "actor": "\(change.actor)"])
        return try await show(SecretReference(org: change.org, path: change.path))
    }

    /// Erases the ciphertext and wrapped data key of the given versions (all when nil).
    package func destroy(_ request: SecretDestruction) async throws -> SecretMetadata {
        try SecretPath.validate(org: request.org)
        try SecretPath.validate(request.path)
        let metadata = try await show(SecretReference(org: request.org, path: request.path))
        let versions = request.versions ?? Array(1...metadata.currentVersion)
        guard !versions.isEmpty, versions.allSatisfy({ (1...metadata.currentVersion).contains($0) }) else {
            throw ServiceError(.badRequest, "secret '\(request.path)' has versions 1 to \(metadata.currentVersion)")
        }
        try await database.query(
            """
            UPDATE secret_versions SET ciphertext = NULL, wrapped_data_key = NULL, org_key_version = NULL, destroyed_at = now()
            WHERE org = \(request.org) AND path = \(request.path) AND version = ANY(\(versions)) AND destroyed_at IS NULL
            """, logger: logger)
        logger.info(
            "secret versions destroyed",
            metadata: ["org": "\(request.org)", "secret.path": "\(request.path)", "secret.versions": "\(versions)", "actor": "\(request.actor)"])
        return metadata
    }

    /// Deletes all but the newest `keeping` versions (records rewritten often, like OAuth grants,
    /// which would otherwise keep every access token ever issued).
    package func prune(org: String, path: String, keeping: Int) async throws {
        try await database.query(
            """
            DELETE FROM secret_versions v USING secrets s
            WHERE v.org = \(org) AND v.path = \(path) AND s.org = v.org AND s.path = v.path AND v.version <= s.current_version - \(keeping)
            """, logger: logger)
    }

    // MARK: Reads

    /// The value of the latest (or a given) version, for a service.
    package func read(_ reference: SecretReference) async throws -> SecretValue {
        do {
            return try await readOnce(reference)
        } catch is OrgKeyMissing {
            // A rotation rewrapped the row between reading it and fetching its key: read it again.
            return try await readOnce(reference)
        }
    }

    private func readOnce(_ reference: SecretReference) async throws -> SecretValue {
        try SecretPath.validate(org: reference.org)
        try SecretPath.validate(reference.path)
        let (org, path) = (reference.org, reference.path)
        let rows = try await database.execute(SecretVersionQuery(org: org, path: path, version: reference.version), logger: logger)
        guard let row = try await rows.collected().first else {
            throw ServiceError(.notFound, "no secret '\(path)'\(reference.version.map { " version \($0)" } ?? "") in org '\(org)'")
        }
        let (version, ciphertext, wrappedKey, orgKeyVersion, deletedAt, expiresAt) = row
        if deletedAt != nil { throw ServiceError(.notFound, "secret '\(path)' of org '\(org)' is deleted") }
        if let expiresAt, expiresAt <= Date() { throw ServiceError(.notFound, "secret '\(path)' of org '\(org)' expired") }
        guard let ciphertext, let wrappedKey, let orgKeyVersion else {
            throw ServiceError(.notFound, "version \(version) of secret '\(path)' was destroyed")
        }
        let orgKey = try await keys.key(of: org, version: orgKeyVersion)
        let envelope = Envelope(
            ciphertext: Array(ciphertext.readableBytesView), wrappedDataKey: Array(wrappedKey.readableBytesView), orgKeyVersion: orgKeyVersion)
        let record = Self.record(org: org, path: path, version: version)
        let value: [UInt8]
        do {
            value = try envelope.open(with: orgKey, context: Self.context(org: org, path: path, version: version), record: record)
        } catch {
            logger.error("a secret does not open", metadata: ["org": "\(org)", "secret.path": "\(path)", "secret.version": "\(version)"])
            throw ServiceError(.internal, "\(error)")
        }
        try await recordUse(org: org, path: path)
        return SecretValue(version: version, value: Data(value).base64EncodedString())
    }

    private func recordUse(org: String, path: String) async throws {
        let now = ContinuousClock.now
        let due = lastRecordedUse.withLock { recorded -> Bool in
            let key = org + "\u{0}" + path
            if let last = recorded[key], now - last < .seconds(60) { return false }
            recorded[key] = now
            return true
        }
        if due { try await database.query("UPDATE secrets SET last_used_at = now() WHERE org = \(org) AND path = \(path)", logger: logger) }
    }

    package func show(_ reference: SecretReference) async throws -> SecretMetadata {
        try SecretPath.validate(org: reference.org)
        try SecretPath.validate(reference.path)
        let found = try await metadata(
            "SELECT \(unescaped: Self.columns) FROM secrets WHERE org = \(reference.org) AND path = \(reference.path)")
        guard let first = found.first else { throw ServiceError(.notFound, "no secret '\(reference.path)' in org '\(reference.org)'") }
        return first
    }

    package func list(_ request: SecretListRequest) async throws -> SecretList {
        try SecretPath.validate(org: request.org)
        let prefix =
            (request.prefix ?? "").replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_") + "%"
        let found = try await metadata(
            """
            SELECT \(unescaped: Self.columns) FROM secrets
            WHERE org = \(request.org) AND path LIKE \(prefix) AND (deleted_at IS NULL OR \(request.includeDeleted)) ORDER BY path
            """)
        return SecretList(secrets: found)
    }

    package func versions(_ reference: SecretReference) async throws -> SecretVersionList {
        _ = try await show(reference)
        let rows = try await database.query(
            """
            SELECT version, created_at, created_by, destroyed_at IS NOT NULL, org_key_version FROM secret_versions
            WHERE org = \(reference.org) AND path = \(reference.path) ORDER BY version
            """, logger: logger)
        var versions: [SecretVersionInfo] = []
        for try await (version, created, by, destroyed, orgKeyVersion) in rows.decode((Int, Date, String, Bool, Int?).self) {
            versions.append(
                SecretVersionInfo(version: version, createdAt: created, createdBy: by, destroyed: destroyed, orgKeyVersion: orgKeyVersion))
        }
        return SecretVersionList(versions: versions)
    }

    private static let columns = """
        org, path, current_version, description, tags, created_at, created_by, updated_at, updated_by, expires_at, last_used_at, deleted_at
        """

    private func metadata(_ query: PostgresQuery) async throws -> [SecretMetadata] {
        try await Self.metadata(try await database.query(query, logger: logger))
    }

    private static func metadata(_ rows: PostgresRowSequence) async throws -> [SecretMetadata] {
        var found: [SecretMetadata] = []
        for try await row in rows.decode((String, String, Int, String?, [String], Date, String, Date, String, Date?, Date?, Date?).self) {
            found.append(
                SecretMetadata(
                    org: row.0, path: row.1, currentVersion: row.2, description: row.3, tags: row.4, createdAt: row.5, createdBy: row.6,
                    updatedAt: row.7, updatedBy: row.8, expiresAt: row.9, lastUsedAt: row.10, deletedAt: row.11))
        }
        return found
    }
}
