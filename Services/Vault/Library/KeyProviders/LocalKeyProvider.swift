import Crypto
import Foundation
import _CryptoExtras

/// The root key in this process: 32 random bytes from `WARDEN_VAULT_KEY` (or the file named by
/// `WARDEN_VAULT_KEY_FILE`), or derived once at start-up from an operator's passphrase
/// (`WARDEN_VAULT_PASSPHRASE[_FILE]`) with scrypt (N 2^15, r 8, p 1: 32 MiB, about 0.1 s) and a
/// random salt stored in the vault's schema. Org keys are wrapped with AES-256-GCM.
package struct LocalKeyProvider: RootKeyProvider {
    package let kind = "local"
    package let keyID: String
    private let root: SymmetricKey

    package init(root: SymmetricKey) {
        self.root = root
        // A fingerprint that says which key, and nothing about it.
        let fingerprint = HMAC<SHA256>.authenticationCode(for: Data("warden root key id v1".utf8), using: root)
        keyID = "local:" + fingerprint.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// The key from its base64 text.
    package init(base64 text: String, variable: String) throws(KeyProviderError) {
        guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == 32 else {
            throw KeyProviderError(
                provider: "local", "\(variable) must be 32 random bytes, base64-encoded (for example: openssl rand -base64 32)")
        }
        self.init(root: SymmetricKey(data: data))
    }

    /// Scrypt parameters for passphrases; stored nowhere else, so changing them is a root rotation.
    static let scryptRounds = 1 << 15

    package init(passphrase: String, salt: [UInt8]) throws(KeyProviderError) {
        guard passphrase.utf8.count >= 16 else {
            throw KeyProviderError(provider: "local", "the vault passphrase must be at least 16 characters long")
        }
        do {
            self.init(
                root: try KDF.Scrypt.deriveKey(
                    from: Array(passphrase.utf8), salt: salt, outputByteCount: 32, rounds: Self.scryptRounds, blockSize: 8, parallelism: 1))
        } catch {
            throw KeyProviderError(provider: "local", "cannot derive the root key from the passphrase (scrypt failed)")
        }
    }

    package func wrap(_ key: [UInt8], context: [UInt8]) async throws -> [UInt8] {
        Array(try AES.GCM.seal(key, using: root, authenticating: context).combined!)
    }

    package func unwrap(_ wrapped: [UInt8], context: [UInt8]) async throws -> [UInt8] {
        Array(try AES.GCM.open(AES.GCM.SealedBox(combined: wrapped), using: root, authenticating: context))
    }
}
