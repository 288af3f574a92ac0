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

        func run() async throws {
            var fields: [String: JSONField] = [
                "agent": .string(agent), "org": .string(org), "scopes": .array(scopes.isEmpty ? ["mcp"] : scopes),
            ]
            if let expiresIn { fields["expiresInSeconds"] = .int(expiresIn) }
            let body = try await AdminClient(gateway, path: "/admin/v1/apikeys").send(.POST, "", body: .object(fields))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let created = try JSONDecoder().decode(CreatedAPIKey.self, from: body)
            print(created.key)
            FileHandle.standardError.write(Data("API key \(created.id) created: store it now, it is not shown again.\n".utf8))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API key by id.")
        @OptionGroup var gateway: GatewayOptions
        @Argument(help: "The key's id (the part after wdn_).") var id: String

        func run() async throws {
            _ = try await AdminClient(gateway, path: "/admin/v1/apikeys").send(.POST, "/\(id)/revoke")
            print("revoked API key \(id)")
        }
    }
}
