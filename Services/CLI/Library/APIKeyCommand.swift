import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts

/// `warden apikey create|revoke`: an agent's long-lived credential, exchanged for short-lived
/// tokens at `/oauth/token` (client id = the key's id, client secret = the key). Shown once.
struct APIKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apikey",
        abstract: "Create and revoke agent API keys (admin token from $WARDEN_ADMIN_TOKEN).",
        subcommands: [Create.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key for an agent; it is printed once and never shown again.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (tenant).") var org: String
        @Option(help: "The agent id the key stands for.") var agent: String
        @Option(name: .customLong("scope"), help: "A scope (repeat; default: mcp).") var scopes: [String] = []
        @Option(help: "Seconds until the key expires (default: never).") var expiresIn: Int?
        @Flag(help: "Print JSON (id, key, expiresAt).") var json = false
        @OptionGroup var output: CredentialOutput

        func run() async throws {
            var fields: [String: JSONField] = [
                "agent": .string(agent), "org": .string(org), "scopes": .array(scopes.isEmpty ? ["mcp"] : scopes),
            ]
            if let expiresIn { fields["expiresInSeconds"] = .int(expiresIn) }
            let body = try await AdminClient(gateway, path: "/admin/v1/apikeys").send(.POST, "", body: .object(fields))
            if json { return try output.deliver(String(decoding: body, as: UTF8.self)) }
            let created = try JSONDecoder().decode(CreatedAPIKey.self, from: body)
            try output.deliver(created.key, reminder: "API key \(created.id) created: store it now, it is not shown again.")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API key by id.")
        @OptionGroup var gateway: GatewayOptions
        @Argument(help: "The key's id (the part after wdn_).") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/apikeys").send(.POST, "/\(id)/revoke")
            print(json ? String(decoding: body, as: UTF8.self) : "revoked API key \(id)")
        }
    }
}

/// `warden admin-key create|list|revoke`: platform admin keys (`wda_…`), kept by the vault as
/// keyed hashes. The bootstrap makes the first on an empty system; make more, then revoke that one.
struct AdminKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-key",
        abstract: "Create, list and revoke platform admin keys (needs a platform credential in $WARDEN_ADMIN_TOKEN).",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a platform admin key; it is printed once and never shown again.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "What the key is for (say, who holds it).") var label: String
        @Flag(help: "Print JSON (id, key).") var json = false
        @OptionGroup var output: CredentialOutput

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/admin-keys").send(.POST, "", body: .object(["label": .string(label)]))
            if json { return try output.deliver(String(decoding: body, as: UTF8.self)) }
            let created = try JSONDecoder().decode(CreatedAPIKey.self, from: body)
            try output.deliver(created.key, reminder: "admin key \(created.id) created: store it now, it is not shown again.")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List admin keys (ids and labels; never the keys).")
        @OptionGroup var gateway: GatewayOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/admin-keys").send(.GET, "")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let keys = try JSONDecoder().decode(AdminKeyList.self, from: body).keys
            func time(_ seconds: Int64?) -> String {
                seconds.map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval($0))) } ?? "-"
            }
            print(
                Table.render(
                    [["ID", "LABEL", "CREATED", "LAST USED", "REVOKED"]]
                        + keys.map { [$0.id, $0.label, time($0.createdAt), time($0.lastUsedAt), time($0.revokedAt)] }))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an admin key by id: refused on every gateway at once.")
        @OptionGroup var gateway: GatewayOptions
        @Argument(help: "The key's id (the part after wda_).") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/admin-keys").send(.POST, "/\(id)/revoke")
            print(json ? String(decoding: body, as: UTF8.self) : "revoked admin key \(id)")
        }
    }
}
