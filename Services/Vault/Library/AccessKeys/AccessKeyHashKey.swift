import Crypto
import Synchronization
import WardenContracts

/// The key of the API and admin keys' hashes: a platform secret of the vault, loaded at start-up
/// (`VaultKeysService`), so that a copy of the key tables alone cannot even test guesses.
package final class AccessKeyHashKey: Sendable {
    /// Where it is kept among the platform's secrets.
    static let path = "warden/access-key-hashing-key"
    private let key = Mutex<SymmetricKey?>(nil)

    package init() {}

    func set(_ value: SymmetricKey) { key.withLock { $0 = value } }

    var value: SymmetricKey {
        get throws(ServiceError) {
            guard let value = key.withLock({ $0 }) else { throw ServiceError(.unavailable, "the vault's keys are not open yet") }
            return value
        }
    }
}
