import Foundation
import Logging
import ServiceLifecycle
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// The first start of an empty system. Every gateway asks, once policy and the vault answer:
/// policy creates the first org and its owner if there is no org yet, and, when the operator did not
/// bring a platform credential (`WARDEN_ADMIN_TOKEN`), the vault creates the first admin key if none
/// was ever made. Both happen exactly once whatever the replicas; the one gateway that gets the key
/// shows it once: printed to its standard error (not the log), or written to
/// `WARDEN_BOOTSTRAP_CREDENTIAL_FILE` (mode 0600) when that is set.
package struct BootstrapService: Service {
    package struct Settings: Sendable, Equatable {
        package var org: String
        package var ownerEmail: String
        /// Whether the operator configured a platform credential (then no admin key is made).
        package var operatorHasCredential: Bool
        package var credentialFile: String?

        package init(environment: [String: String], operatorHasCredential: Bool) {
            org = environment["WARDEN_BOOTSTRAP_ORG"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
            ownerEmail = environment["WARDEN_BOOTSTRAP_OWNER_EMAIL"].flatMap { $0.isEmpty ? nil : $0 } ?? "owner@localhost"
            self.operatorHasCredential = operatorHasCredential
            credentialFile = environment["WARDEN_BOOTSTRAP_CREDENTIAL_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        }
    }

    let settings: Settings
    let client: ServiceClient
    let logger: Logger

    package init(settings: Settings, client: ServiceClient, logger: Logger) {
        self.settings = settings
        self.client = client
        self.logger = logger
    }

    package func run() async throws {
        // Shutting down while policy or the vault is still away must not wait for them.
        await cancelWhenGracefulShutdown { await self.bootstrap() }
        // A Service that returns stops the group: stay until shutdown.
        try? await gracefulShutdown()
    }

    func bootstrap() async {
        var delay = Duration.milliseconds(250)
        var principalsDone = false, keyDone = settings.operatorHasCredential
        while !Task.isCancelled, !(principalsDone && keyDone) {
            do {
                if !principalsDone {
                    let outcome = try await client.call(
                        BootstrapEndpoints.principals, BootstrapRequest(org: settings.org, name: "", ownerEmail: settings.ownerEmail))
                    if outcome.created, let org = outcome.org, let owner = outcome.owner {
                        logger.notice(
                            "bootstrap: created the first org and its owner",
                            metadata: ["org": "\(org.id)", "user": "\(owner.id)", "email": "\(owner.email)"])
                    }
                    principalsDone = true
                }
                if !keyDone {
                    if let key = try await client.call(BootstrapEndpoints.adminKey, EmptyBody()).key { deliver(key) }
                    keyDone = true
                }
            } catch  where error.code == .badRequest || error.code == .conflict {
                // A setting is wrong (say, the org id): retrying will not help; say so and stop trying.
                logger.error("bootstrap: \(error.message)")
                break
            } catch {
                logger.debug("bootstrap: waiting for policy and the vault", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        if principalsDone && keyDone { logger.info("bootstrap: the system has its first org and an admin credential") }
    }

    /// Shows the new admin key once: into the credential file, else (or when that fails: the key
    /// exists only here) on standard error.
    func deliver(_ key: CreatedAPIKey) {
        if let file = settings.credentialFile {
            do {
                try PrivateFile.write(key.key + "\n", to: file, replacing: false)
                logger.notice(
                    "bootstrap: the platform admin key was written to the credential file", metadata: ["file": "\(file)", "adminkey.id": "\(key.id)"])
                return
            } catch {
                logger.error("bootstrap: \(error); showing the admin key on standard error instead")
            }
        }
        let banner = """

            ======================================================================
             Warden bootstrap: the platform admin key. It is shown only this once.

                 \(key.key)

             Use it as WARDEN_ADMIN_TOKEN for the warden CLI and the admin API.
             Make others with `warden admin-key create`; revoke this one with
             `warden admin-key revoke \(key.id)`.
            ======================================================================

            """
        FileHandle.standardError.write(Data(banner.utf8))
        logger.notice("bootstrap: printed the platform admin key on standard error", metadata: ["adminkey.id": "\(key.id)"])
    }
}
