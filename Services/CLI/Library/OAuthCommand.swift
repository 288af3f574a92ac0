import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts

/// `warden oauth …`: OAuth connections to downstream SaaS. An org's OAuth client for a provider,
/// then a grant made once in a browser (`connect`), per user or for the org; servers refer to the
/// connection's current access token with `${oauth://NAME}` in a header.
struct OAuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oauth",
        abstract: "Connect downstream servers to SaaS through OAuth (the vault keeps and refreshes the tokens).",
        subcommands: [Client.self, SignIn.self, Registration.self, Provider.self, Connect.self, Status.self, Disconnect.self]
    )

    static let path = "/admin/v1/oauth"

    /// Warden's own OAuth client at a downstream provider (one per provider connection).
    struct Provider: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "An org's OAuth clients at downstream providers (one per provider connection).",
            subcommands: [Set.self, List.self, Delete.self])

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Store an OAuth client; its secret is read from standard input (--client-secret-stdin) or a file, never the command line.")
            @OptionGroup var gateway: GatewayOptions
            @OptionGroup var owner: SecretOwner
            @Argument(help: "The connection's name (servers refer to it as oauth://NAME; name it after the server).") var name: String
            @Option(help: "The client id the provider issued.") var clientId: String
            @Option(help: "The provider's authorization endpoint (https).") var authorizeUrl: String
            @Option(help: "The provider's token endpoint (https).") var tokenUrl: String
            @Option(name: .customLong("scope"), help: "A scope to ask for (repeat).") var scopes: [String] = []
            @Flag(help: "Read the client secret from standard input (one trailing newline removed).") var clientSecretStdin = false
            @Option(help: "Read the client secret from this file.") var clientSecretFile: String?
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                var fields: [String: JSONField] = [
                    "org": .string(owner.org), "name": .string(name), "clientId": .string(clientId), "authorizeUrl": .string(authorizeUrl),
                    "tokenUrl": .string(tokenUrl), "scopes": .array(scopes),
                ]
                if clientSecretStdin || clientSecretFile != nil {
                    guard !(clientSecretStdin && clientSecretFile != nil) else {
                        throw ValidationError("use --client-secret-stdin or --client-secret-file")
                    }
                    var data: Data
                    if let clientSecretFile {
                        guard let contents = FileManager.default.contents(atPath: clientSecretFile) else {
                            throw ValidationError("cannot read \(clientSecretFile)")
                        }
                        data = contents
                    } else {
                        data = FileHandle.standardInput.readDataToEndOfFile()
                    }
                    while data.last == 0x0A || data.last == 0x0D { data.removeLast() }
                    guard let secret = String(data: data, encoding: .utf8), !secret.isEmpty else {
                        throw ValidationError("the client secret is empty")
                    }
                    fields["clientSecret"] = .string(secret)
                }
                let body = try await AdminClient(gateway, path: OAuthCommand.path).send(.POST, "/clients", body: .object(fields))
                if json { return print(String(decoding: body, as: UTF8.self)) }
                let client = try EnvelopeCoding.decoder().decode(OAuthClientView.self, from: body)
                print(
                    "stored OAuth client \(client.name) of \(client.org) (\(client.hasClientSecret ? "confidential" : "public, PKCE only")); connect it with: warden oauth connect \(client.name) \(owner.flag)"
                )
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List an org's OAuth clients (never their secrets).")
            @OptionGroup var gateway: GatewayOptions
            @OptionGroup var owner: SecretOwner
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                let body = try await AdminClient(gateway, path: OAuthCommand.path).send(.GET, "/clients?org=\(SecretCommand.escape(owner.org))")
                if json { return print(String(decoding: body, as: UTF8.self)) }
                let list = try EnvelopeCoding.decoder().decode(OAuthClientList.self, from: body)
                guard !list.clients.isEmpty else { return print("no OAuth clients in \(owner.org) (add one with: warden oauth provider set NAME …)") }
                var rows = [["NAME", "CLIENT ID", "SECRET", "TOKEN URL", "SCOPES", "UPDATED", "BY"]]
                for client in list.clients {
                    rows.append([
                        client.name, client.clientID, client.hasClientSecret ? "yes" : "no", client.tokenURL,
                        client.scopes.isEmpty ? "-" : client.scopes.joined(separator: " "), SecretCommand.date(client.updatedAt), client.updatedBy,
                    ])
                }
                print(SecretCommand.table(rows))
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Erase an OAuth client (its grants stop refreshing).")
            @OptionGroup var gateway: GatewayOptions
            @OptionGroup var owner: SecretOwner
            @Argument(help: "The connection's name.") var name: String

            func run() async throws {
                _ = try await AdminClient(gateway, path: OAuthCommand.path).send(
                    .POST, "/clients/delete", body: .object(["org": .string(owner.org), "name": .string(name)]))
                print("erased OAuth client \(name) of \(owner.org)")
            }
        }
    }

    /// A connection's grant: the org's, or a user's.
    struct Grant: ParsableArguments {
        @OptionGroup var gateway: GatewayOptions
        @OptionGroup var owner: SecretOwner
        @Option(help: "The user whose grant (what per-user servers use); default: the org's own.") var user: String?
        @Argument(help: "The connection's name.") var name: String

        func validate() throws {
            if user != nil, owner.shared { throw ValidationError("--user names a user of an org: use it with --org") }
        }

        var fields: [String: JSONField] {
            var fields: [String: JSONField] = ["org": .string(owner.org), "name": .string(name)]
            if let user { fields["user"] = .string(user) }
            return fields
        }

        var who: String { user.map { "user \($0) of \(owner.org)" } ?? owner.org }
    }

    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the URL that makes the connection: whoever opens it signs in at the provider and is sent back to the gateway.")
        @OptionGroup var grant: Grant
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(grant.gateway, path: OAuthCommand.path).send(.POST, "/connect", body: .object(grant.fields))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let authorization = try EnvelopeCoding.decoder().decode(OAuthAuthorization.self, from: body)
            print(
                """
                Open this URL in a browser to connect \(grant.name) for \(grant.who) (valid until \(SecretCommand.date(authorization.expiresAt)), once):

                \(authorization.url)
                """)
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Whether a connection is made, and until when its access token holds.")
        @OptionGroup var grant: Grant
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var query = "/status?org=\(SecretCommand.escape(grant.owner.org))&name=\(SecretCommand.escape(grant.name))"
            if let user = grant.user { query += "&user=\(SecretCommand.escape(user))" }
            let body = try await AdminClient(grant.gateway, path: OAuthCommand.path).send(.GET, query)
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let status = try EnvelopeCoding.decoder().decode(OAuthConnectionStatus.self, from: body)
            if let failure = status.failure {
                print("\(grant.name) for \(grant.who): needs connecting again: \(failure)")
            } else if status.connected {
                print(
                    "\(grant.name) for \(grant.who): connected \(status.obtainedAt.map(SecretCommand.date) ?? "-"), access token until \(status.expiresAt.map(SecretCommand.date) ?? "no expiry") (refreshed automatically)"
                )
            } else {
                print(
                    "\(grant.name) for \(grant.who): not connected (warden oauth connect \(grant.name) \(grant.owner.flag)\(grant.user.map { " --user \($0)" } ?? ""))"
                )
            }
        }
    }

    struct Disconnect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Erase a connection's grant: calls that need it fail until it is made again.")
        @OptionGroup var grant: Grant

        func run() async throws {
            _ = try await AdminClient(grant.gateway, path: OAuthCommand.path).send(.POST, "/disconnect", body: .object(grant.fields))
            print("disconnected \(grant.name) for \(grant.who)")
        }
    }
}

extension SecretOwner {
    /// The option that names this owner again.
    var flag: String { shared ? "--shared" : "--org \(org)" }
}
