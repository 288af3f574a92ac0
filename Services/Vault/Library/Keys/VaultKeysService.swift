import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import WardenContracts
import WardenNATS
import WardenServiceKit

/// Opens the vault's keys once the schema is migrated, and keeps replicas' caches in step:
///
/// 1. the root key provider (and a previous one, when rotating) from the configuration;
/// 2. a check that they open the stored org keys: a wrong root key stops the vault here, with the
///    provider and the reason, before anything is written;
/// 3. records sealed by an earlier Warden directly under `WARDEN_VAULT_KEY` (token signing keys)
///    are sealed again under the hierarchy, and the API-key hashing key becomes a platform secret;
/// 4. `ready` opens; then every rotation announced on `KeyHierarchy.invalidations` drops this
///    replica's cached org keys.
package struct VaultKeysService: Service {
    let environment: [String: String]
    let keys: KeyHierarchy
    let secrets: SecretStore
    let signingKeys: SigningKeyStore
    let hashKey: AccessKeyHashKey
    let startup: StartupGate
    let ready: StartupGate
    let bus: NATSConnection
    let database: DatabasePool
    let health: HealthState
    let logger: Logger

    package init(
        environment: [String: String], keys: KeyHierarchy, secrets: SecretStore, signingKeys: SigningKeyStore, hashKey: AccessKeyHashKey,
        startup: StartupGate, ready: StartupGate, bus: NATSConnection, database: DatabasePool, health: HealthState, logger: Logger
    ) {
        self.environment = environment
        self.keys = keys
        self.secrets = secrets
        self.signingKeys = signingKeys
        self.hashKey = hashKey
        self.startup = startup
        self.ready = ready
        self.bus = bus
        self.database = database
        self.health = health
        self.logger = logger
    }

    package func run() async throws {
        health.set("keys", ok: false, detail: "opening the vault's keys")
        do {
            try await open()
        } catch {
            health.set("keys", ok: false, detail: "\(error)")
            throw error
        }
        health.set("keys", ok: true)
        let invalidations = try bus.subscribe(KeyHierarchy.invalidations, queue: nil)
        ready.open()
        await cancelWhenGracefulShutdown {
            for await message in invalidations {
                let org = String(decoding: message.payload, as: UTF8.self)
                keys.dropCache(org: org.isEmpty ? nil : org)
            }
        }
        invalidations.unsubscribe()
    }

    private func open() async throws {
        try await startup.wait()
        let provider = try await KeyProviderChoice.current(environment, database: database, logger: logger)
        let previous = try await KeyProviderChoice.previous(environment, database: database, logger: logger)
        keys.open(provider: provider, previous: previous)
        try await keys.verify()
        // An earlier Warden sealed with WARDEN_VAULT_KEY itself; it is needed (once) to move those records.
        let legacy = try? VaultKey.fromEnvironment(environment)
        do {
            try await signingKeys.sealUnderHierarchy(legacy: legacy)
            hashKey.set(try await accessKeyHashKey(legacy: legacy))
        } catch let error as StartupError {
            throw error
        } catch {
            throw StartupError("cannot open the vault's platform keys: \(error)")
        }
        logger.info(
            "vault keys open",
            metadata: [
                "vault.provider": "\(provider.kind)", "vault.root_key": "\(provider.keyID)", "vault.previous_root_key": "\(previous?.keyID ?? "-")",
            ])
    }

    /// The API-key hashing key: version 1 of its platform secret, made once. An earlier Warden
    /// derived it from WARDEN_VAULT_KEY; existing keys keep working because that derivation is
    /// what is stored.
    private func accessKeyHashKey(legacy: VaultKey?) async throws -> SymmetricKey {
        let reference = SecretReference(org: KeyHierarchy.platformOrg, path: AccessKeyHashKey.path, version: 1)
        do {
            let stored = try await secrets.read(reference)
            guard let value = Data(base64Encoded: stored.value) else { throw StartupError("the API-key hashing key is malformed") }
            return SymmetricKey(data: value)
        } catch let error as ServiceError where error.code == .notFound {
            // Not made yet: below.
        }
        let existing =
            try await database.query("SELECT (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM admin_keys)", logger: logger)
            .decode(Int.self).collected().first ?? 0
        let value: SymmetricKey
        if existing > 0 {
            guard let legacy else {
                throw StartupError(
                    "API keys made by an earlier Warden were hashed with WARDEN_VAULT_KEY: set it (once) so the vault can keep them valid")
            }
            value = KeyedSecrets.legacyHashKey(legacy)
        } else {
            value = SymmetricKey(size: .bits256)
        }
        let encoded = value.withUnsafeBytes { Data($0).base64EncodedString() }
        _ = try? await secrets.write(
            SecretWrite(
                org: KeyHierarchy.platformOrg, path: AccessKeyHashKey.path, value: encoded, description: "hashes API and admin keys", actor: "warden")
        )
        // Replicas starting together may both write: version 1 is the one every replica uses.
        let stored = try await secrets.read(reference)
        guard let bytes = Data(base64Encoded: stored.value) else { throw StartupError("the API-key hashing key is malformed") }
        return SymmetricKey(data: bytes)
    }
}
