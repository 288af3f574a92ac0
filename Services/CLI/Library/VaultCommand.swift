import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts

/// `warden vault …`: the vault's key hierarchy. Rotations run online; `--dry-run` reports what
/// would change.
struct VaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault",
        abstract: "Inspect and rotate the vault's keys.",
        subcommands: [Status.self, RotateRootKey.self, RotateOrgKey.self, Reencrypt.self, ShredOrg.self]
    )

    static let path = "/admin/v1/vault"

    /// Key work runs while the mesh serves; the client waits for it (up to an hour).
    static func client(_ gateway: GatewayOptions) -> AdminClient {
        var options = gateway
        options.timeout = max(options.timeout, 3600)
        return AdminClient(options, path: path)
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The key provider, root key, org key versions and the answering replica's cache.")
        @OptionGroup var gateway: GatewayOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: VaultCommand.path).send(.GET, "/status")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let status = try EnvelopeCoding.decoder().decode(VaultStatus.self, from: body)
            var lines = [
                "provider         \(status.provider)",
                "root key         \(status.rootKeyID)",
                "previous root    \(status.previousRootKeyID ?? "-")",
                "org keys         \(status.orgKeys.count) org(s); \(status.orgKeysUnderOtherRoots) still under another root key",
                "without share    \(status.orgKeysWithoutShare.map(String.init) ?? "?") org key(s) made by an earlier Warden\((status.orgKeysWithoutShare ?? 0) > 0 ? " (rotate-org-key binds them to a share, so that shredding holds against older dumps)" : "")",
                "cache            \(status.cachedOrgKeys) org key(s) held by the answering replica, each for \(status.cacheSeconds) s",
            ]
            if !status.orgKeys.isEmpty {
                var rows = [["ORG", "CURRENT", "VERSIONS", "ROOT KEY"]]
                for org in status.orgKeys { rows.append([org.org, "\(org.currentVersion)", "\(org.versions)", org.rootKeyID]) }
                lines.append("")
                lines.append(SecretCommand.table(rows))
            }
            print(lines.joined(separator: "\n"))
        }
    }

    struct RotateRootKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wrap every org key with the configured root key.",
            discussion: """
                Configure the new root key (or provider) as the vault's key and the old one as the previous key \
                (WARDEN_VAULT_PREVIOUS_KEY, ...), restart the vault, run this, then remove the previous key.
                """)
        @OptionGroup var gateway: GatewayOptions
        @Flag(help: "Report what would change; change nothing.") var dryRun = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await VaultCommand.client(gateway).send(
                .POST, "/rotate-root-key", body: .object(["dryRun": .bool(dryRun)]))
            try VaultCommand.report(body, json: json) { "\($0.dryRun ? "would rewrap" : "rewrapped") \($0.orgKeys) org key(s)" }
        }
    }

    struct RotateOrgKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give an org a new key and rewrap its data keys with it, online, in batches.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (tenant).") var org: String?
        @Flag(help: "The platform's own key instead (token signing keys, the API-key hashing key).") var platform = false
        @Flag(help: "Report what would change; change nothing.") var dryRun = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            guard (org != nil) != platform else { throw ValidationError("name the org with --org, or rotate the platform's key with --platform") }
            let body = try await VaultCommand.client(gateway).send(
                .POST, "/rotate-org-key", body: .object(["org": .string(org ?? "warden:platform"), "dryRun": .bool(dryRun)]))
            let whose = org.map { "org \($0)" } ?? "the platform"
            try VaultCommand.report(body, json: json) { "\($0.dryRun ? "would rewrap" : "rewrapped") \($0.dataKeys) data key(s) of \(whose)" }
        }
    }

    struct Reencrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Seal every stored version of a secret again under a fresh data key.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (tenant).") var org: String
        @Argument(help: "The secret's path.") var path: String
        @Flag(help: "Report what would change; change nothing.") var dryRun = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await VaultCommand.client(gateway).send(
                .POST, "/reencrypt", body: .object(["org": .string(org), "path": .string(path), "dryRun": .bool(dryRun)]))
            try VaultCommand.report(body, json: json) {
                "\($0.dryRun ? "would re-encrypt" : "re-encrypted") \($0.secretVersions) version(s) of \(org)/\(path)"
            }
        }
    }

    struct ShredOrg: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Destroy an org's keys and secrets: nothing sealed under them can be opened again.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (tenant).") var org: String
        @Option(help: "The org's name again, to confirm: this cannot be undone.") var confirm: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            guard confirm == org else {
                throw ValidationError("destroying org \(org)'s keys cannot be undone: repeat its name with --confirm \(org)")
            }
            let body = try await VaultCommand.client(gateway).send(
                .POST, "/shred-org", body: .object(["org": .string(org), "confirm": .string(org)]))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let report = try EnvelopeCoding.decoder().decode(KeyRotationReport.self, from: body)
            let destroyed =
                "destroyed \(report.orgKeys) key(s) and \(report.secretVersions) secret version(s) of org \(org)"
                + String(format: " in %.2f s", report.seconds)
            let unbound = report.unboundOrgKeys ?? 0
            if report.orgKeys == 0 { return print(destroyed) }
            if unbound == 0 {
                return print(destroyed + "; their share outside the database is gone, so no copy of the database opens what they sealed")
            }
            print(
                destroyed
                    + "; \(unbound) of them had no share outside the database (made by an earlier Warden): a dump taken before still opens what they sealed"
            )
        }
    }

    static func report(_ body: Data, json: Bool, _ summary: (KeyRotationReport) -> String) throws {
        if json { return print(String(decoding: body, as: UTF8.self)) }
        let report = try EnvelopeCoding.decoder().decode(KeyRotationReport.self, from: body)
        print(summary(report) + String(format: " in %.2f s", report.seconds))
    }
}
