import Crypto
import Foundation
import Synchronization
import WardenAuditChain
import WardenContracts

/// The key that signs audit checkpoints: an Ed25519 key kept as a platform secret of the vault
/// (sealed under the key hierarchy like every secret), made on first use, cached once opened. It
/// signs only what `AuditNotary` builds; its public half is published.
package final class AuditSigningKey: Sendable {
    /// Where it is kept among the platform's secrets.
    static let path = "warden/audit-checkpoint-key"
    let secrets: SecretStore
    private let cached = Mutex<Curve25519.Signing.PrivateKey?>(nil)

    package init(secrets: SecretStore) {
        self.secrets = secrets
    }

    /// Signs a statement the notary built (`AuditNotary`): the key id and the signature, base64.
    func sign(_ statement: Data) async throws -> (keyID: String, signature: String) {
        let key = try await privateKey()
        return (Self.keyID(key.publicKey), try key.signature(for: statement).base64EncodedString())
    }

    func publicKeys() async throws -> AuditPublicKeys {
        let key = try await privateKey().publicKey
        return AuditPublicKeys(keys: [AuditPublicKey(id: Self.keyID(key), publicKey: key.rawRepresentation.base64EncodedString())])
    }

    /// The first 16 hex digits of the public key's SHA-256.
    static func keyID(_ key: Curve25519.Signing.PublicKey) -> String {
        "audit-" + String(AuditChain.hex(SHA256.hash(data: key.rawRepresentation)).prefix(16))
    }

    private func privateKey() async throws -> Curve25519.Signing.PrivateKey {
        if let key = cached.withLock({ $0 }) { return key }
        let reference = SecretReference(org: KeyHierarchy.platformOrg, path: Self.path, version: 1)
        let stored: SecretValue
        do {
            stored = try await secrets.read(reference)
        } catch let error as ServiceError where error.code == .notFound {
            let made = Curve25519.Signing.PrivateKey()
            // Replicas making it at once may both write: version 1 is the one every replica uses.
            _ = try? await secrets.write(
                SecretWrite(
                    org: KeyHierarchy.platformOrg, path: Self.path, value: made.rawRepresentation.base64EncodedString(),
                    description: "signs audit checkpoints", actor: "warden"))
            stored = try await secrets.read(reference)
        }
        guard let raw = Data(base64Encoded: stored.value), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw ServiceError(.internal, "the audit signing key is malformed")
        }
        cached.withLock { $0 = key }
        return key
    }
}
