import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts

/// `warden token issue`: an agent token signed by the vault, through the gateway's admin API
/// (admin token from `$WARDEN_ADMIN_TOKEN`). Print it once; give it to the agent as
/// `WARDEN_AGENT_TOKEN` or as a bearer token.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Issue agent tokens (admin token from $WARDEN_ADMIN_TOKEN).",
        subcommands: [Issue.self]
    )

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a short-lived agent token.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The agent the token is for.") var agent: String
        @Option(help: "The user the agent acts for.") var user: String
        @Option(help: "The org (tenant).") var org: String
        @Option(name: .customLong("scope"), help: "A scope (repeat; default: mcp).") var scopes: [String] = []
        @Option(help: "Lifetime in seconds (default 900).") var lifetime: Int = 900
        @Flag(help: "Print JSON (token, tokenID, expiresAt).") var json = false

        func run() async throws {
            let fields: [String: JSONField] = [
                "agent": .string(agent), "user": .string(user), "org": .string(org), "lifetimeSeconds": .int(lifetime),
                "scopes": .array(scopes.isEmpty ? ["mcp"] : scopes),
            ]
            let body = try await AdminClient(gateway, path: "/admin/v1/tokens").send(.POST, "", body: .object(fields))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let signed = try JSONDecoder().decode(SignedToken.self, from: body)
            print(signed.token)
        }
    }
}
