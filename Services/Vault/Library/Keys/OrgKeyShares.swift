import Crypto
import Foundation
import Logging
import PostgresNIO
import Synchronization
import WardenContracts
import WardenNATS
import WardenServiceKit

/// Each org's key share: 32 random bytes kept outside PostgreSQL, in a NATS key-value bucket that
/// only the vault may use (deploy/nats/warden-nats.conf). An org key bound to a share opens
/// nothing without it (`OrgKey.bound(to:)`), so erasing the share when the org is shredded makes
/// its keys useless even in a database dump taken before, with the root key at hand.
///
/// A share alone opens nothing either: it only counts combined with an org key that the root key
/// unwraps. So it is stored as it is: wrapping it with the root key would cost a provider round
/// trip on every cache miss and protect nothing the root key does not protect already.
///
/// The bucket is as vital as the database (lose it and every bound org key is lost); a backup of
/// it taken before a shredding, kept with a database dump and the root key, opens that org again.
package final class OrgKeyShares: Sendable {
    package static let bucketName = "WARDEN_VAULT_ORG_SHARES"
    static let shareBytes = 32

    let bus: NATSConnection
    let replicas: Int
    let database: DatabasePool
    let logger: Logger
    private let opened = Mutex<NATSKeyValueBucket?>(nil)

    package init(bus: NATSConnection, replicas: Int, database: DatabasePool, logger: Logger) {
        self.bus = bus
        self.replicas = replicas
        self.database = database
        self.logger = logger
    }

    /// The org's share, or nil if it has none (never made, or erased by a shredding).
    package func share(of org: String) async throws -> [UInt8]? {
        guard let entry = try await bucket().get(Self.key(org)) else { return nil }
        guard entry.value.count == Self.shareBytes else { throw ServiceError(.internal, "org '\(org)''s key share is malformed") }
        return Array(entry.value)
    }

    /// The org's share, made now if it has none; replicas making one at once agree on the first.
    package func ensureShare(of org: String) async throws -> [UInt8] {
        if let existing = try await share(of: org) { return existing }
        let fresh = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        do {
            try await bucket().create(Self.key(org), fresh)
            return Array(fresh)
        } catch let error as NATSError where error.code == .keyConflict {
            guard let existing = try await share(of: org) else { throw ServiceError(.unavailable, "org '\(org)''s key share changed while made") }
            return existing
        }
    }

    /// Erases the org's share from NATS's storage; returns whether it had one.
    package func erase(of org: String) async throws -> Bool {
        try await bucket().erase(Self.key(org))
    }

    /// Bucket keys allow few characters: the org's name in hex.
    package static func key(_ org: String) -> String {
        "org." + LowercaseHex.string(Array(org.utf8))
    }

    /// Checks at start-up that the bucket is there if any org key is bound to it: a vault whose
    /// NATS lost its storage stops here, saying so. NATS merely not answering yet is left to the
    /// first use.
    package func check() async throws(StartupError) {
        do {
            _ = try await open()
        } catch let lost as OrgKeySharesLost {
            throw StartupError(lost.description)
        } catch {
            logger.warning("the org key shares' bucket is not available yet", metadata: ["error": "\(error)"])
        }
    }

    /// Opens the bucket now (see `open`), outside any transaction.
    package func prepare() async throws { _ = try await bucket() }

    private func bucket() async throws -> NATSKeyValueBucket {
        do {
            return try await open()
        } catch let lost as OrgKeySharesLost {
            throw ServiceError(.unavailable, lost.description)
        }
    }

    /// Bound to on first use, so that a NATS hiccup at start-up does not stop the vault; created
    /// (erasable) only while no org key is bound to a share: a bucket missing then means NATS's
    /// storage was lost or replaced, and making an empty one would turn every org into a shredded
    /// one without a word.
    private func open() async throws -> NATSKeyValueBucket {
        if let bucket = opened.withLock({ $0 }) { return bucket }
        let spec = KeyValueBucketSpec(name: Self.bucketName, history: 1, replicas: replicas, erasable: true)
        let bucket: NATSKeyValueBucket
        do {
            do {
                bucket = try await bus.keyValueBucket(spec, create: false)
            } catch let error as NATSError where error.code == .bucketMissing {
                let bound =
                    try await database.query("SELECT count(*) FROM org_keys WHERE bound_to_share", logger: logger)
                    .decode(Int.self).collected().first ?? 0
                guard bound == 0 else { throw OrgKeySharesLost(boundVersions: bound) }
                bucket = try await bus.keyValueBucket(spec, create: true)
                logger.info("created the org key shares' bucket in NATS", metadata: ["nats.bucket": "\(Self.bucketName)"])
            }
        } catch let error as OrgKeySharesLost {
            throw error
        } catch {
            throw ServiceError(.unavailable, "the org key shares' bucket in NATS (\(Self.bucketName)) is not available: \(error)")
        }
        opened.withLock { $0 = bucket }
        return bucket
    }
}

/// Org keys are bound to shares, and the bucket that held them is gone.
struct OrgKeySharesLost: Error, CustomStringConvertible {
    var boundVersions: Int
    var description: String {
        """
        \(boundVersions) org key version(s) are bound to shares in the NATS bucket \(OrgKeyShares.bucketName), which does not exist: \
        NATS's JetStream storage was lost or replaced. Restore it (the vault makes the bucket only while no org key is bound); \
        nothing was changed
        """
    }
}
