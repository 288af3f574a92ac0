import ArgumentParser
import Foundation
import WardenContracts

/// `warden`: the operator's command-line tool. It talks only to the gateway.
public struct WardenCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "warden",
        abstract: "Operate a Warden mesh: the zero-trust vault and gateway for MCP agents.",
        version: WardenVersion.current,
        subcommands: [StatusCommand.self, DemoCommand.self, ServerCommand.self, OrgCommand.self, UserCommand.self, AgentCommand.self, ServiceAccountCommand.self, TokenCommand.self, APIKeyCommand.self, AdminKeyCommand.self, ConnectCommand.self, ProbeCommand.self]
    )

    public init() {}
}

/// Options every command that talks to the gateway shares.
struct GatewayOptions: ParsableArguments {
    @Option(name: .long, help: "The gateway's URL (default: $WARDEN_URL, else http://127.0.0.1:8080).")
    var url: String?

    @Option(name: .long, help: "Seconds to wait for the gateway.")
    var timeout: Int = 5

    var resolvedURL: String {
        let raw = url ?? ProcessInfo.processInfo.environment["WARDEN_URL"] ?? "http://127.0.0.1:8080"
        return raw.hasSuffix("/") ? String(raw.dropLast()) : raw
    }
}
