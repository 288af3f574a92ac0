import Foundation
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The root key in a hardware security module, through its PKCS#11 module: an AES-256 key object
/// that is sensitive and not extractable, so it never leaves the module. Org keys are wrapped and
/// unwrapped inside it with AES-GCM (a random 96-bit IV, the context as additional data).
///
/// Configured with `WARDEN_VAULT_PKCS11_MODULE` (the module's path, for example
/// `/usr/lib/softhsm/libsofthsm2.so`), `WARDEN_VAULT_PKCS11_TOKEN` (the token's label),
/// `WARDEN_VAULT_PKCS11_PIN` or `_PIN_FILE` (the user PIN) and `WARDEN_VAULT_PKCS11_KEY_LABEL`
/// (default `warden-root-key`); with `WARDEN_VAULT_PKCS11_CREATE_KEY=true` the key is made when
/// missing (under a PostgreSQL advisory lock, so replicas starting together make one).
///
/// The module's calls block: they run on NIO's thread pool, one at a time on one session.
package final class PKCS11KeyProvider: RootKeyProvider, @unchecked Sendable {
    package let kind = "pkcs11"
    package let keyID: String
    private let module: PKCS11Module
    private let session: UInt
    private let key: UInt
    /// One operation at a time on the session (PKCS#11 sessions are not for concurrent use).
    private let lock = Mutex(())

    /// Opens the token and finds the key; makes it when missing only if `createIfMissing` (an
    /// operator's explicit choice, so that a mistyped label never makes a key of its own).
    package init(modulePath: String, token: String, pin: String, keyLabel: String, createIfMissing: Bool) throws(KeyProviderError) {
        module = try PKCS11Module(path: modulePath)
        let slot = try module.slot(withTokenLabel: token)
        session = try module.openSession(slot: slot)
        try module.login(session: session, pin: pin)
        if let existing = try module.findSecretKey(session: session, label: keyLabel) {
            key = existing
        } else if createIfMissing {
            key = try module.generateAESKey(session: session, label: keyLabel)
        } else {
            throw KeyProviderError(
                provider: "pkcs11",
                "token '\(token)' has no secret key labelled '\(keyLabel)': name the right one, or set WARDEN_VAULT_PKCS11_CREATE_KEY=true to make it"
            )
        }
        keyID = "pkcs11:\(token)/\(keyLabel)"
    }

    package func wrap(_ key: [UInt8], context: [UInt8]) async throws -> [UInt8] {
        try await NIOThreadPool.singleton.runIfActive { [self] in
            try lock.withLock { _ in
                let iv = try module.random(session: session, count: 12)
                return iv + (try module.encryptGCM(session: session, key: self.key, iv: iv, aad: context, plaintext: key))
            }
        }
    }

    package func unwrap(_ wrapped: [UInt8], context: [UInt8]) async throws -> [UInt8] {
        guard wrapped.count > 12 + 16 else { throw KeyProviderError(provider: kind, "a wrapped key is too short") }
        return try await NIOThreadPool.singleton.runIfActive { [self] in
            try lock.withLock { _ in
                try module.decryptGCM(
                    session: session, key: key, iv: Array(wrapped.prefix(12)), aad: context, ciphertext: Array(wrapped.dropFirst(12)))
            }
        }
    }
}
