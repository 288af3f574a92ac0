import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Synchronization
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// Platform admin keys (`wda_…`), checked with the vault and reused for 30 seconds; revoking one
/// drops it on every gateway at once (revocation broadcast, kind `api_key`).
package final class AdminKeyVerifier: Sendable {
    let client: ServiceClient
    let revocations: RevocationList
    /// By SHA-256 of the key: (key id, when checked).
    private let checked = Mutex<[String: (id: String, at: ContinuousClock.Instant)]>([:])

    package init(client: ServiceClient, revocations: RevocationList) {
        self.client = client
        self.revocations = revocations
    }

    package enum Verdict: Sendable { case valid, invalid, unavailable }

    package func check(_ key: String) async -> Verdict {
        guard revocations.isReady else { return .unavailable }
        let digest = SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
        if let known = checked.withLock({ $0[digest] }), ContinuousClock.now - known.at < .seconds(30) {
            if !revocations.isAPIKeyRevoked(known.id) { return .valid }
            _ = checked.withLock { $0.removeValue(forKey: digest) }
            return .invalid
        }
        do throws(ServiceError) {
            let id = try await client.call(AdminKeyEndpoints.check, APIKeyPresentation(key: key)).id
            guard !revocations.isAPIKeyRevoked(id) else { return .invalid }
            checked.withLock { cache in
                if cache.count >= 1_000 { cache.removeAll() }
                cache[digest] = (id, .now)
            }
            return .valid
        } catch {
            return error.code == .unauthorized ? .invalid : .unavailable
        }
    }
}
