import Foundation
import Logging
import WardenContracts
import WardenServiceKit

/// Moves the plaintext `env` and `headers` values of servers registered before the vault held
/// them (and of servers seeded from `WARDEN_MCP_SERVERS_FILE`) into the vault, and rewrites the
/// server's settings as references: `secret://servers/<id>/env/<NAME>`, in the server's org (the
/// shared secrets for a shared server).
///
/// Every literal value that looks like a credential moves (`LiteralCredentialCheck`, the rule that
/// refuses such values in new registrations), so the registry ends up holding exactly what a new
/// registration may hold; other values (`NODE_ENV=production`) stay literal, and are not scrubbed
/// from every answer and log line as injected secrets are. It runs when the
/// gateway starts and with every periodic refresh until it has nothing left, so a vault that is
/// down at start-up delays it without stopping the gateway. Each server is rewritten only if it did
/// not change meanwhile; a retry after a crash stores a new version of the same secret.
package struct CredentialMigration: Sendable {
    let store: any ServerRegistryStore
    let client: ServiceClient
    let logger: Logger
    static let actor = "warden:credential-migration"

    package init(store: any ServerRegistryStore, client: ServiceClient, logger: Logger) {
        self.store = store
        self.client = client
        self.logger = logger
    }

    /// Moves what is left; `announce` tells every replica to re-read the registry if anything moved.
    func run(announce: () -> Void) async {
        let pending: [PlaintextServer]
        do { pending = try await store.withPlaintextCredentials() } catch {
            logger.warning("cannot look for plaintext server credentials", metadata: ["error": "\(error)"])
            return
        }
        guard !pending.isEmpty else { return }
        var moved: [String] = []
        for server in pending {
            let definition = server.definition
            do {
                let (rewritten, count) = try await migrate(definition)
                if try await store.replacePlaintext(server, with: rewritten), count > 0 {
                    moved.append(definition.id)
                    logger.info(
                        "moved a server's plaintext values into the vault", metadata: ["mcp.server": "\(definition.id)", "secret.count": "\(count)"])
                }
            } catch {
                logger.warning(
                    "cannot move a server's plaintext values into the vault yet; will try again",
                    metadata: ["mcp.server": "\(definition.id)", "error": "\(error)"])
            }
        }
        guard !moved.isEmpty else { return }
        // The old row versions, which held the values, are gone from the table's files too.
        do { try await store.compact() } catch { logger.warning("cannot compact the server registry", metadata: ["error": "\(error)"]) }
        announce()
    }

    /// The definition with every plaintext value stored in the vault and replaced by its reference.
    func migrate(_ definition: MCPServerDefinition) async throws -> (MCPServerDefinition, Int) {
        var rewritten = definition
        var count = 0
        let org = definition.org ?? SecretReference.sharedOrg
        func move(_ values: [String: String]?, _ setting: LiteralCredentialCheck.Setting) async throws -> [String: String]? {
            guard var values else { return nil }
            for (name, value) in values.sorted(by: { $0.key < $1.key }) {
                guard let template = try? CredentialTemplate(parsing: value), template.references.isEmpty,
                    value.utf8.count >= SecretRedactor.minimumSecretBytes,
                    LiteralCredentialCheck.problem(server: definition.id, setting: setting, name: name, template: template) != nil
                else { continue }
                let path = LiteralCredentialCheck.suggestedPath(server: definition.id, setting: setting, name: name)
                _ = try await client.call(
                    SecretEndpoints.write,
                    SecretWrite(
                        org: org, path: path, value: Data(value.utf8).base64EncodedString(),
                        description: "\(setting.rawValue) \(name) of MCP server \(definition.id), moved from the gateway's registry",
                        actor: Self.actor))
                values[name] = "secret://" + path
                count += 1
            }
            return values
        }
        rewritten.env = try await move(definition.env, .environment)
        rewritten.headers = try await move(definition.headers, .header)
        return (rewritten, count)
    }
}
