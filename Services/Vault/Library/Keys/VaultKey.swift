import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenIdentity
import WardenServiceKit

/// How Warden sealed records before the key hierarchy: directly with `WARDEN_VAULT_KEY` (32 random
/// bytes, base64, or the file named by `WARDEN_VAULT_KEY_FILE`), AES-256-GCM with the record's id
/// as associated data. Read only, at start-up, to move such records under the hierarchy
/// (`SigningKeyStore.sealUnderHierarchy`), and to keep API keys hashed by an earlier Warden valid.
package struct VaultKey: Sendable {
    let key: SymmetricKey

    package init(base64 text: String) throws(ConfigurationError) {
        guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == 32 else {
            throw ConfigurationError(key: "vault.key", problem: "must be 32 random bytes, base64-encoded (for example: openssl rand -base64 32)")
        }
        key = SymmetricKey(data: data)
    }

    package static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> VaultKey
    {
        if let file = environment["WARDEN_VAULT_KEY_FILE"], !file.isEmpty {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError(key: "vault.key.file", problem: "cannot read \(file)")
            }
            return try VaultKey(base64: text)
        }
        guard let text = environment["WARDEN_VAULT_KEY"], !text.isEmpty else {
            throw ConfigurationError(key: "vault.key", problem: "is required: 32 random bytes, base64-encoded (openssl rand -base64 32)")
        }
        return try VaultKey(base64: text)
    }

    /// Sealed as an earlier Warden did (tests make such records to check the upgrade).
    package func seal(_ plaintext: [UInt8], boundTo context: String) throws -> [UInt8] {
        Array(try AES.GCM.seal(plaintext, using: key, authenticating: Data(context.utf8)).combined!)
    }

    func open(_ sealed: [UInt8], boundTo context: String) throws -> [UInt8] {
        Array(try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key, authenticating: Data(context.utf8)))
    }
}
