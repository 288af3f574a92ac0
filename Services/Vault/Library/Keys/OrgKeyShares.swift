import Crypto
import Foundation
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
    private let opened = Mutex<NATSKeyValueBucket?>(nil)

    package init(bus: NATSConnection, replicas: Int) {
        self.bus = bus
        self.replicas = replicas
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
        "org." + org.utf8.map { String(format: "%02x", $0) }.joined()
    }

    /// Bound to (and, the first time, created as an erasable bucket) on first use, so that a NATS
    /// hiccup at start-up does not stop the vault.
    private func bucket() async throws -> NATSKeyValueBucket {
        if let bucket = opened.withLock({ $0 }) { return bucket }
        let spec = KeyValueBucketSpec(name: Self.bucketName, history: 1, replicas: replicas, erasable: true)
        let bucket: NATSKeyValueBucket
        do {
            bucket = try await bus.keyValueBucket(spec)
        } catch {
            throw ServiceError(.unavailable, "the org key shares' bucket in NATS (\(Self.bucketName)) is not available: \(error)")
        }
        opened.withLock { $0 = bucket }
        return bucket
    }
}
