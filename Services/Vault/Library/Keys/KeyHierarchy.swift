import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import WardenContracts
import WardenServiceKit

/// The vault's key hierarchy: a root key (in its provider) wraps one key-encryption key per org
/// and version (`org_keys`); org keys wrap the data keys of that org's records (`Envelope`).
/// An org's keys are bound to its share outside the database (`OrgKeyShares`), which shredding
/// erases; the platform's own keys are not (they are never shredded).
/// Unwrapped org keys are cached for a short, configurable time and dropped on every rotation, so
/// a read does no key derivation and no provider round trip.
///
/// Replicas share nothing in memory that matters: org keys live in PostgreSQL; a rotation on one
/// replica tells the others to drop their caches (`invalidations`), and a record can only refer
/// to an org key version that exists (a foreign key), so a stale cache makes a write retry, not a
/// record no key opens.
package final class KeyHierarchy: Sendable {
    /// The org of the platform's own records (token signing keys, the API-key hashing key); not a
    /// valid org name, so no org can own it.
    package static let platformOrg = "warden:platform"
    /// Broadcast (not queued) to every vault replica when keys rotate: drop cached org keys.
    package static let invalidations = "warden.vault.keys.changed"

    let database: DatabasePool
    let shares: OrgKeyShares
    let logger: Logger
    private let cache: Mutex<OrgKeyCache<ContinuousClock.Instant>>
    /// Set once at start-up (`open`): a passphrase's salt is in the schema.
    private let roots = Mutex<(current: any RootKeyProvider, previous: (any RootKeyProvider)?)?>(nil)

    package init(database: DatabasePool, shares: OrgKeyShares, cacheLifetime: Duration, logger: Logger) {
        self.database = database
        self.shares = shares
        self.logger = logger
        cache = Mutex(OrgKeyCache(lifetime: cacheLifetime))
    }

    /// The root keys: the current one wraps new org keys; a previous one still unwraps until a
    /// root rotation has moved everything to the current one.
    package func open(provider: any RootKeyProvider, previous: (any RootKeyProvider)?) {
        roots.withLock { $0 = (provider, previous) }
    }

    package var provider: any RootKeyProvider {
        get throws(ServiceError) {
            guard let current = roots.withLock({ $0?.current }) else { throw ServiceError(.unavailable, "the vault's keys are not open yet") }
            return current
        }
    }

    package var previous: (any RootKeyProvider)? { roots.withLock { $0?.previous } }

    /// The org's current key, creating version 1 the first time (once, whatever the replicas).
    package func currentKey(of org: String) async throws -> OrgKey {
        let now = ContinuousClock.now
        if let key = cache.withLock({ cache in cache.currentVersion(of: org, now: now).flatMap { cache.key(org: org, version: $0, now: now) } }) {
            return key
        }
        if let stored = try await loadCurrent(org) { return stored }
        try await shares.prepare()
        try await database.transaction(logger: logger) { connection in
            try await lock(org, on: connection)
            let existing = try await connection.count("SELECT count(*) FROM org_keys WHERE org = \(org)", logger: logger)
            guard existing == 0 else { return }
            let version = try await latestVersion(of: org, on: connection) + 1
            try await insert(org: org, version: version, on: connection)
            logger.info("created the org's key", metadata: ["org": "\(org)", "org_key.version": "\(version)"])
        }
        guard let created = try await loadCurrent(org) else { throw ServiceError(.internal, "the org key was not stored") }
        return created
    }

    /// A given version of the org's key (to open what was sealed under it).
    package func key(of org: String, version: Int) async throws -> OrgKey {
        let now = ContinuousClock.now
        if let key = cache.withLock({ $0.key(org: org, version: version, now: now) }) { return key }
        let rows = try await database.query(
            "SELECT wrapped_key, root_key_id, bound_to_share FROM org_keys WHERE org = \(org) AND version = \(version)", logger: logger)
        for try await (wrapped, rootKeyID, bound) in rows.decode((ByteBuffer, String, Bool).self) {
            let key = try await usable(
                unwrap(org: org, version: version, bound: bound, wrapped: Array(wrapped.readableBytesView), rootKeyID: rootKeyID))
            cache.withLock { $0.store(key, isCurrent: false, now: .now) }
            return key
        }
        throw OrgKeyMissing(org: org, version: version)
    }

    /// Adds the org's next key version, which wraps every new data key from now on.
    package func addVersion(of org: String) async throws -> OrgKey {
        try await shares.prepare()
        try await database.transaction(logger: logger) { connection in
            try await lock(org, on: connection)
            try await insert(org: org, version: try await latestVersion(of: org, on: connection) + 1, on: connection)
        }
        dropCache(org: org)
        guard let created = try await loadCurrent(org) else { throw ServiceError(.internal, "the org key was not stored") }
        logger.info("added an org key version", metadata: ["org": "\(org)", "org_key.version": "\(created.version)"])
        return created
    }

    /// Every org key wrapped by another root than the current provider's, wrapped again by it.
    package func rewrapUnderCurrentRoot(dryRun: Bool) async throws -> Int {
        let provider = try self.provider
        let rows = try await database.query(
            """
            SELECT org, version, wrapped_key, root_key_id, bound_to_share FROM org_keys WHERE root_key_id <> \(provider.keyID) ORDER BY org, version
            """, logger: logger)
        var moved = 0
        for try await (org, version, wrapped, rootKeyID, bound) in rows.decode((String, Int, ByteBuffer, String, Bool).self) {
            let key = try await unwrap(org: org, version: version, bound: bound, wrapped: Array(wrapped.readableBytesView), rootKeyID: rootKeyID)
            moved += 1
            if dryRun { continue }
            let rewrapped = key.key.key.withUnsafeBytes { Array($0) }
            let sealed = try await provider.wrap(rewrapped, context: OrgKey.wrappingContext(org: org, version: version, bound: bound))
            try await database.query(
                """
                UPDATE org_keys SET wrapped_key = \(ByteBuffer(bytes: sealed)), root_key_id = \(provider.keyID)
                WHERE org = \(org) AND version = \(version) AND root_key_id = \(rootKeyID)
                """, logger: logger)
        }
        if !dryRun && moved > 0 { logger.info("org keys rewrapped under the current root key", metadata: ["org_keys": "\(moved)"]) }
        return moved
    }

    /// Deletes org key versions older than the current one that no record uses any more. A write
    /// that still named an old version (a replica's cache) keeps it: deleted on the next rotation.
    package func retireUnused(of org: String) async throws -> Int {
        let retired: Int
        do {
            let rows = try await database.query(
                """
                DELETE FROM org_keys k WHERE k.org = \(org) AND k.version < (SELECT max(version) FROM org_keys WHERE org = \(org))
                  AND NOT EXISTS (SELECT 1 FROM secret_versions s WHERE s.org = k.org AND s.org_key_version = k.version)
                  AND NOT EXISTS (SELECT 1 FROM signing_keys g WHERE g.org = k.org AND g.org_key_version = k.version)
                RETURNING version
                """, logger: logger)
            retired = try await rows.collect().count
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23503" {
            return 0
        }
        if retired > 0 { dropCache(org: org) }
        return retired
    }

    /// Holds the org's keys still until the transaction ends: creating, adding and destroying
    /// versions take it.
    package func lock(_ org: String, on connection: PostgresConnection) async throws {
        try await connection.advisoryTransactionLock("warden.vault.org_keys.\(org)", logger: logger)
    }

    /// Erases the org's share outside the database (under its lock): the first step of shredding,
    /// after which nothing sealed under its keys opens, in this database or any copy of it.
    /// Returns whether it had one.
    /// Opens the shares' bucket before a transaction needs it: its first opening reads the
    /// database, which must not wait for a connection while the transaction holds one.
    package func prepareShares() async throws { try await shares.prepare() }

    package func eraseShare(of org: String) async throws -> Bool {
        let erased = try await shares.erase(of: org)
        dropCache(org: org)
        return erased
    }

    /// Destroys every key of `org` (under its lock, after its records): the rows go, their last
    /// version is kept so that the numbers are never reused.
    package func destroyKeys(of org: String, on connection: PostgresConnection) async throws -> (versions: Int, unbound: Int) {
        let rows = try await connection.query("DELETE FROM org_keys WHERE org = \(org) RETURNING version, bound_to_share", logger: logger)
        let destroyed = try await rows.decode((Int, Bool).self).collected()
        if let last = destroyed.map(\.0).max() {
            try await connection.query(
                """
                INSERT INTO org_key_tombstones (org, last_version) VALUES (\(org), \(last))
                ON CONFLICT (org) DO UPDATE SET last_version = greatest(org_key_tombstones.last_version, EXCLUDED.last_version), shredded_at = now()
                """, logger: logger)
        }
        dropCache(org: org)
        return (destroyed.count, destroyed.filter { !$0.1 }.count)
    }

    /// Checks at start-up that every stored org key's root is configured, and that the current
    /// root opens what it wrapped: a wrong root key stops the vault before it serves anything.
    /// Shares are not looked at: a shredded org's keys restored from a dump must not stop the vault.
    package func verify() async throws(StartupError) {
        guard let provider = try? self.provider else { throw StartupError("the vault's root key is not configured") }
        let previous = self.previous
        let known = [provider.keyID] + (previous.map { [$0.keyID] } ?? [])
        let sample: [(String, Int, ByteBuffer, String, Bool)]
        do {
            let rows = try await database.query(
                """
                SELECT DISTINCT ON (root_key_id) org, version, wrapped_key, root_key_id, bound_to_share FROM org_keys
                ORDER BY root_key_id, org, version
                """, logger: logger)
            sample = try await rows.decode((String, Int, ByteBuffer, String, Bool).self).collected()
        } catch {
            throw StartupError("cannot read the org keys: \(ServiceDatabase.describe(error))")
        }
        for (org, version, wrapped, rootKeyID, bound) in sample {
            guard known.contains(rootKeyID) else {
                throw StartupError(
                    """
                    the org keys are wrapped by root key \(rootKeyID), but the configured \(provider.kind) root key is \(provider.keyID)\
                    \(previous.map { " and the previous one \($0.keyID)" } ?? ""): configure the root key they were stored with \
                    (or it as the previous key, to rotate); nothing was changed
                    """)
            }
            do {
                _ = try await unwrap(org: org, version: version, bound: bound, wrapped: Array(wrapped.readableBytesView), rootKeyID: rootKeyID)
            } catch {
                throw StartupError("root key \(rootKeyID) (\(provider.kind)) cannot unwrap the key of org '\(org)' version \(version): \(error)")
            }
        }
        try await shares.check()
    }

    package func dropCache(org: String?) {
        cache.withLock { $0.drop(org: org) }
    }

    package var cachedKeys: Int { cache.withLock { $0.count(now: .now) } }
    package var cacheSeconds: Int { Int(cache.withLock { $0.lifetime }.components.seconds) }

    private func loadCurrent(_ org: String) async throws -> OrgKey? {
        let rows = try await database.query(
            "SELECT version, wrapped_key, root_key_id, bound_to_share FROM org_keys WHERE org = \(org) ORDER BY version DESC LIMIT 1",
            logger: logger)
        for try await (version, wrapped, rootKeyID, bound) in rows.decode((Int, ByteBuffer, String, Bool).self) {
            let key = try await usable(
                unwrap(org: org, version: version, bound: bound, wrapped: Array(wrapped.readableBytesView), rootKeyID: rootKeyID))
            cache.withLock { $0.store(key, isCurrent: true, now: .now) }
            return key
        }
        return nil
    }

    /// The highest version the org's keys ever had, a shredded org's included: numbers are never
    /// reused, so a replica's cached key can never pass for a new one.
    private func latestVersion(of org: String, on connection: PostgresConnection) async throws -> Int {
        try await connection.count(
            """
            SELECT greatest((SELECT coalesce(max(version), 0) FROM org_keys WHERE org = \(org)),
                            (SELECT coalesce(max(last_version), 0) FROM org_key_tombstones WHERE org = \(org)))
            """, logger: logger)
    }

    private func insert(org: String, version: Int, on connection: PostgresConnection) async throws {
        let provider = try self.provider
        let bound = org != Self.platformOrg
        if bound, try await shares.share(of: org) == nil {
            // A new share only for an org whose keys have none: one bound to a share that is gone
            // (a shredding interrupted after the erasure, a bucket restored from an older backup)
            // must not get fresh keys beside keys nothing can open.
            let orphaned = try await connection.count("SELECT count(*) FROM org_keys WHERE org = \(org) AND bound_to_share", logger: logger)
            guard orphaned == 0 else {
                throw ServiceError(
                    .conflict,
                    "org '\(org)''s keys are bound to a share that is gone (an interrupted shredding?): finish with warden vault shred-org")
            }
            _ = try await shares.ensureShare(of: org)
        }
        let key = SymmetricKey(size: .bits256)
        let wrapped = key.withUnsafeBytes { Array($0) }
        let sealed = try await provider.wrap(wrapped, context: OrgKey.wrappingContext(org: org, version: version, bound: bound))
        try await connection.query(
            """
            INSERT INTO org_keys (org, version, wrapped_key, root_key_id, bound_to_share)
            VALUES (\(org), \(version), \(ByteBuffer(bytes: sealed)), \(provider.keyID), \(bound))
            """, logger: logger)
    }

    /// The key records are sealed under: a bound key combined with its org's share.
    private func usable(_ unwrapped: (key: OrgKey, bound: Bool)) async throws -> OrgKey {
        let (key, bound) = unwrapped
        guard bound else { return key }
        guard let share = try await shares.share(of: key.org) else {
            throw ServiceError(
                .notFound, "org '\(key.org)''s keys were destroyed (shredded): what was sealed under key version \(key.version) can never be opened")
        }
        return key.bound(to: share)
    }

    private func unwrap(org: String, version: Int, bound: Bool, wrapped: [UInt8], rootKeyID: String) async throws -> (key: OrgKey, bound: Bool) {
        let provider = try self.provider
        let root: any RootKeyProvider
        if rootKeyID == provider.keyID {
            root = provider
        } else if let previous, rootKeyID == previous.keyID {
            root = previous
        } else {
            throw KeyProviderError(
                provider: provider.kind, "the key of org '\(org)' version \(version) is wrapped by root key \(rootKeyID), which is not configured")
        }
        do {
            let raw = try await root.unwrap(wrapped, context: OrgKey.wrappingContext(org: org, version: version, bound: bound))
            return (OrgKey(org: org, version: version, key: SymmetricKey(data: raw)), bound)
        } catch let error as KeyProviderError {
            throw error
        } catch {
            throw KeyProviderError(provider: root.kind, "the key of org '\(org)' version \(version) does not unwrap with root key \(rootKeyID)")
        }
    }
}
