import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenServiceKit

/// Which root key provider the vault uses, from one variable, `WARDEN_VAULT_KEY_PROVIDER`:
///
/// - `local` (default): the root key from `WARDEN_VAULT_KEY_FILE`, else `WARDEN_VAULT_KEY`, else a
///   passphrase from `WARDEN_VAULT_PASSPHRASE_FILE`, else `WARDEN_VAULT_PASSPHRASE` (first found).
/// - `pkcs11`: a key in a hardware security module (`PKCS11KeyProvider`): `WARDEN_VAULT_PKCS11_MODULE`,
///   `WARDEN_VAULT_PKCS11_TOKEN`, `WARDEN_VAULT_PKCS11_PIN[_FILE]`, `WARDEN_VAULT_PKCS11_KEY_LABEL`,
///   `WARDEN_VAULT_PKCS11_CREATE_KEY`.
/// - `aws-kms`: a KMS key (`AWSKMSKeyProvider`): `WARDEN_VAULT_AWS_KMS_KEY_ID`, `WARDEN_VAULT_AWS_REGION`
///   (else `AWS_REGION`), `WARDEN_VAULT_AWS_KMS_ENDPOINT`, and the standard `AWS_ACCESS_KEY_ID`,
///   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
///
/// A previous root key, to rotate away from, is configured the same way with `PREVIOUS_` after
/// `WARDEN_VAULT_` (`WARDEN_VAULT_PREVIOUS_KEY_PROVIDER`, `WARDEN_VAULT_PREVIOUS_KEY`, ...).
/// There is no plaintext provider.
package enum KeyProviderChoice {
    package static func current(_ environment: [String: String], database: DatabasePool, logger: Logger) async throws(StartupError)
        -> any RootKeyProvider
    {
        guard let provider = try await make(prefix: "WARDEN_VAULT_", environment, database: database, logger: logger) else {
            throw StartupError(
                """
                the vault needs a root key: set WARDEN_VAULT_KEY (32 random bytes, base64: openssl rand -base64 32) or \
                WARDEN_VAULT_KEY_FILE, or a passphrase in WARDEN_VAULT_PASSPHRASE(_FILE), or WARDEN_VAULT_KEY_PROVIDER
                """)
        }
        return provider
    }

    package static func previous(_ environment: [String: String], database: DatabasePool, logger: Logger) async throws(StartupError)
        -> (any RootKeyProvider)?
    {
        try await make(prefix: "WARDEN_VAULT_PREVIOUS_", environment, database: database, logger: logger)
    }

    private static func make(prefix: String, _ environment: [String: String], database: DatabasePool, logger: Logger) async throws(StartupError)
        -> (any RootKeyProvider)?
    {
        func value(_ name: String) throws(StartupError) -> (variable: String, text: String)? {
            if let file = environment[prefix + name + "_FILE"], !file.isEmpty {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw StartupError("cannot read \(file) (\(prefix + name)_FILE)")
                }
                return (prefix + name + "_FILE", text.trimmingCharacters(in: .newlines))
            }
            if let text = environment[prefix + name], !text.isEmpty { return (prefix + name, text) }
            return nil
        }
        let kind = environment[prefix + "KEY_PROVIDER"].flatMap { $0.isEmpty ? nil : $0.lowercased() }
        switch kind ?? "local" {
        case "local":
            do {
                if let (variable, text) = try value("KEY") { return try LocalKeyProvider(base64: text, variable: variable) }
                if let (_, passphrase) = try value("PASSPHRASE") {
                    return try LocalKeyProvider(passphrase: passphrase, salt: try await salt(database: database, logger: logger))
                }
            } catch let error as KeyProviderError {
                throw StartupError(error.description)
            } catch let error as StartupError {
                throw error
            } catch {
                throw StartupError("cannot read the passphrase's salt: \(ServiceDatabase.describe(error))")
            }
            guard kind == nil else { throw StartupError("\(prefix)KEY_PROVIDER is local but neither \(prefix)KEY nor \(prefix)PASSPHRASE is set") }
            return nil
        case "pkcs11":
            guard let (_, module) = try value("PKCS11_MODULE"), let (_, token) = try value("PKCS11_TOKEN"), let (_, pin) = try value("PKCS11_PIN")
            else {
                throw StartupError(
                    "\(prefix)KEY_PROVIDER is pkcs11: set \(prefix)PKCS11_MODULE, \(prefix)PKCS11_TOKEN and \(prefix)PKCS11_PIN (or _PIN_FILE)")
            }
            let label = try value("PKCS11_KEY_LABEL")?.text ?? "warden-root-key"
            let create = environment[prefix + "PKCS11_CREATE_KEY"]?.lowercased() == "true"
            do {
                guard create else {
                    return try PKCS11KeyProvider(modulePath: module, token: token, pin: pin, keyLabel: label, createIfMissing: false)
                }
                // Replicas starting together on an empty token make one key, not one each.
                return try await database.transaction(logger: logger) { connection in
                    try await connection.advisoryTransactionLock("warden.vault.pkcs11-key", logger: logger)
                    return try PKCS11KeyProvider(modulePath: module, token: token, pin: pin, keyLabel: label, createIfMissing: true)
                }
            } catch let error as KeyProviderError {
                throw StartupError(error.description)
            } catch {
                throw StartupError("cannot take the lock for making the HSM key: \(ServiceDatabase.describe(error))")
            }
        case "aws-kms":
            guard let (_, key) = try value("AWS_KMS_KEY_ID") else {
                throw StartupError("\(prefix)KEY_PROVIDER is aws-kms: set \(prefix)AWS_KMS_KEY_ID")
            }
            guard let region = try value("AWS_REGION")?.text ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] else {
                throw StartupError("\(prefix)KEY_PROVIDER is aws-kms: set \(prefix)AWS_REGION (or AWS_REGION)")
            }
            guard let access = environment["AWS_ACCESS_KEY_ID"], !access.isEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
            else {
                throw StartupError("\(prefix)KEY_PROVIDER is aws-kms: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            }
            let endpoint = try value("AWS_KMS_ENDPOINT")?.text
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            do {
                return try AWSKMSKeyProvider(
                    keyID: key, region: region, endpoint: endpoint, accessKeyID: access, secretAccessKey: secret, sessionToken: token)
            } catch {
                throw StartupError(error.description)
            }
        case let other:
            throw StartupError("\(prefix)KEY_PROVIDER is '\(other)': choose local, pkcs11 or aws-kms")
        }
    }

    /// The salt of passphrase-derived root keys: random, made once, kept in the vault's schema.
    static func salt(database: DatabasePool, logger: Logger) async throws -> [UInt8] {
        var random = SystemRandomNumberGenerator()
        let fresh = (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }
        try await database.query(
            "INSERT INTO root_key_salt (id, salt) VALUES (1, \(ByteBuffer(bytes: fresh))) ON CONFLICT (id) DO NOTHING", logger: logger)
        for try await salt in try await database.query("SELECT salt FROM root_key_salt WHERE id = 1", logger: logger).decode(ByteBuffer.self) {
            return Array(salt.readableBytesView)
        }
        throw StartupError("the passphrase's salt was not stored")
    }
}
