import ArgumentParser
import Foundation
import WardenContracts
import WardenIdentity

/// `warden`: the operator's command-line tool. It talks only to the gateway.
package struct WardenCommand: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "warden",
        abstract: "Operate a Warden mesh: the zero-trust vault and gateway for MCP agents.",
        version: WardenVersion.current,
        subcommands: [
            StatusCommand.self, DemoCommand.self, ServerCommand.self, OrgCommand.self, UserCommand.self, AgentCommand.self,
            ServiceAccountCommand.self, TokenCommand.self, APIKeyCommand.self, AdminKeyCommand.self, SecretCommand.self, OAuthCommand.self,
            PolicyCommand.self, ToolCommand.self, ApprovalsCommand.self, AuditCommand.self, VaultCommand.self,
            ConnectCommand.self, ProbeCommand.self,
        ]
    )

    package init() {}
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

/// Where a command puts a credential it has just issued: standard output (it is shown only this
/// once), or with `--out` a new file readable by its owner only, which keeps it out of terminals,
/// shell history and CI logs.
struct CredentialOutput: ParsableArguments {
    @Option(help: "Write the credential to this new file (mode 0600; an existing file is not replaced) instead of standard output.")
    var out: String?

    /// Refused before anything is issued: a credential made and then not delivered would be lost.
    func validate() throws {
        if let out, FileManager.default.fileExists(atPath: out) { throw ValidationError("\(out) exists: a credential never replaces a file") }
    }

    /// Hands over `text` (the credential, or the JSON holding it). `reminder`, when given, goes to
    /// standard error after a credential printed on standard output.
    func deliver(_ text: String, reminder: String? = nil) throws {
        guard let out else {
            print(text)
            if let reminder { FileHandle.standardError.write(Data("\(reminder)\n".utf8)) }
            return
        }
        do {
            try PrivateFile.write(text + "\n", to: out, replacing: false)
        } catch {
            throw ValidationError(error.description)
        }
        FileHandle.standardError.write(Data("written to \(out) (mode 0600)\n".utf8))
    }
}
