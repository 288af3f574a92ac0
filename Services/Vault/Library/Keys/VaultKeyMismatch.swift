import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenIdentity
import WardenServiceKit

/// The stored keys were sealed with another vault key.
package struct VaultKeyMismatch: Error, CustomStringConvertible {
    package var kid: String
    package var description: String { "signing key \(kid) cannot be opened: WARDEN_VAULT_KEY is not the key it was stored with" }
}
