import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts

extension OAuthCommand {
    /// MCP clients that sign users in through Warden's authorization server, registered by an
    /// org's admins (clients may also register themselves or use a metadata document).
    struct Client: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "MCP clients (Claude, ChatGPT, Cursor, your own) that sign an org's users in through Warden.",
            subcommands: [Add.self, List.self, Remove.self])

        static let path = "/admin/v1/authorization"

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Register a client for an org; prints its client id (a public client: PKCE, no secret).")
            @OptionGroup var gateway: GatewayOptions
            @Option(help: "The org whose users sign in with it.") var org: String
            @Option(help: "The name shown on the consent page.") var name: String
            @Option(name: .customLong("redirect-uri"), help: "A redirect URI (repeat; loopback http URIs match any port).") var redirectURIs: [String]
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                let body = try await AdminClient(gateway, path: Client.path).send(
                    .POST, "/clients",
                    body: .object(["org": .string(org), "name": .string(name), "redirectURIs": .array(redirectURIs)]))
                if json { return print(String(decoding: body, as: UTF8.self)) }
                print(try EnvelopeCoding.decoder().decode(AuthorizationClient.self, from: body).id)
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List an org's registered clients (platform admins: every client, without --org).")
            @OptionGroup var gateway: GatewayOptions
            @Option(help: "The org.") var org: String?
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                let query = org.map { "?org=\(SecretCommand.escape($0))" } ?? ""
                let body = try await AdminClient(gateway, path: Client.path).send(.GET, "/clients\(query)")
                if json { return print(String(decoding: body, as: UTF8.self)) }
                let clients = try EnvelopeCoding.decoder().decode(AuthorizationClientList.self, from: body).clients
                guard !clients.isEmpty else {
                    return print("no clients (add one with: warden oauth client add --org ORG --name NAME --redirect-uri URI)")
                }
                print(
                    SecretCommand.table(
                        [["CLIENT ID", "NAME", "KIND", "ORG", "REDIRECT URIS"]]
                            + clients.map { [$0.id, $0.name, $0.kind.rawValue, $0.org ?? "-", $0.redirectURIs.joined(separator: " ")] }))
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a client: its codes and refresh tokens stop working.")
            @OptionGroup var gateway: GatewayOptions
            @Option(help: "The org it is registered for (platform admins may leave it out).") var org: String?
            @Argument(help: "The client id.") var id: String

            func run() async throws {
                var query = "?id=\(SecretCommand.escape(id))"
                if let org { query += "&org=\(SecretCommand.escape(org))" }
                _ = try await AdminClient(gateway, path: Client.path).send(.DELETE, "/clients\(query)")
                print("removed client \(id)")
            }
        }
    }

    struct Registration: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set whether an org's users may use clients that registered themselves (RFC 7591) or use a metadata document.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Option(help: "true: allowed (the default); false: only clients its admins registered.") var dynamicClients: Bool?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let client = AdminClient(gateway, path: Client.path)
            let body =
                if let dynamicClients {
                    try await client.send(.PUT, "/settings", body: .object(["org": .string(org), "dynamicClients": .bool(dynamicClients)]))
                } else {
                    try await client.send(.GET, "/settings?org=\(SecretCommand.escape(org))")
                }
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let settings = try EnvelopeCoding.decoder().decode(SignInSettings.self, from: body)
            print("\(org): dynamically registered and metadata-document clients \(settings.dynamicClients ? "allowed" : "refused")")
        }
    }
}

extension OAuthCommand {
    struct SignIn: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sign-in",
            abstract:
                "Show or choose how an org's users sign in at Warden's OAuth pages: passwords (the default) or the org's OpenID Connect provider.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Option(help: "The provider's issuer (its endpoints are discovered from it).") var oidcIssuer: String?
        @Option(help: "The client id the provider gave Warden (redirect URI: <gateway>/oauth/sign-in/callback/ORG).") var clientId: String?
        @Option(help: "Read the client secret from this file (a public client without it).") var clientSecretFile: String?
        @Option(name: .customLong("scope"), help: "A scope to ask for (repeat; default: openid email profile).") var scopes: [String] = []
        @Option(help: "The ID token claim with the user's email.") var emailClaim: String?
        @Option(help: "The ID token claim with the user's roles or groups (carried into Warden tokens as roles).") var rolesClaim: String?
        @Flag(help: "Go back to passwords (forget the provider).") var passwords = false
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if passwords, oidcIssuer != nil { throw ValidationError("use --passwords or --oidc-issuer, not both") }
            if (oidcIssuer == nil) != (clientId == nil) { throw ValidationError("--oidc-issuer and --client-id go together") }
        }

        func run() async throws {
            let client = AdminClient(gateway, path: Client.path)
            if passwords {
                _ = try await client.send(.DELETE, "/provider?org=\(SecretCommand.escape(org))")
                return print("\(org) signs in with passwords")
            }
            guard let oidcIssuer, let clientId else {
                let body = try await client.send(.GET, "/provider?org=\(SecretCommand.escape(org))")
                if json { return print(String(decoding: body, as: UTF8.self)) }
                let view = try EnvelopeCoding.decoder().decode(SignInProviderView.self, from: body)
                return print("\(org) signs in at \(view.issuer) (client \(view.clientID), \(view.hasClientSecret ? "with a secret" : "public"))")
            }
            var fields: [String: JSONField] = [
                "org": .string(org), "issuer": .string(oidcIssuer), "clientID": .string(clientId),
            ]
            if let clientSecretFile {
                guard var data = FileManager.default.contents(atPath: clientSecretFile) else {
                    throw ValidationError("cannot read \(clientSecretFile)")
                }
                while data.last == 0x0A || data.last == 0x0D { data.removeLast() }
                fields["clientSecret"] = .string(String(decoding: data, as: UTF8.self))
            }
            if !scopes.isEmpty { fields["scopes"] = .array(scopes) }
            if let emailClaim { fields["emailClaim"] = .string(emailClaim) }
            if let rolesClaim { fields["rolesClaim"] = .string(rolesClaim) }
            let body = try await client.send(.PUT, "/provider", body: .object(fields))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let view = try EnvelopeCoding.decoder().decode(SignInProviderView.self, from: body)
            print("\(org) signs in at \(view.issuer) (authorization endpoint \(view.authorizeURL))")
        }
    }
}

extension UserCommand {
    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract: "Set the password a user signs in with at Warden's OAuth pages (read from standard input or a file, never the command line).")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Argument(help: "The user id (usr_…).") var id: String
        @Option(help: "Read the password from this file (one trailing newline removed); default: standard input.") var passwordFile: String?
        @Flag(help: "Remove the password: the user can no longer sign in with one.") var remove = false

        func run() async throws {
            var password: JSONField = .null
            if !remove {
                var data: Data
                if let passwordFile {
                    guard let contents = FileManager.default.contents(atPath: passwordFile) else {
                        throw ValidationError("cannot read \(passwordFile)")
                    }
                    data = contents
                } else {
                    data = FileHandle.standardInput.readDataToEndOfFile()
                }
                while data.last == 0x0A || data.last == 0x0D { data.removeLast() }
                guard let text = String(data: data, encoding: .utf8), !text.isEmpty else { throw ValidationError("the password is empty") }
                password = .string(text)
            }
            _ = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/users").send(
                .PUT, "/\(id)/password", body: .object(["password": password]))
            print(remove ? "removed the password of \(id)" : "set the password of \(id); its sign-in sessions ended")
        }
    }

    struct Consents: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the MCP clients a user let act for them.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Argument(help: "The user id (usr_…).") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/users").send(.GET, "/\(id)/consents")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let consents = try EnvelopeCoding.decoder().decode(ConsentList.self, from: body).consents
            guard !consents.isEmpty else { return print("\(id) has no connected clients") }
            print(
                SecretCommand.table(
                    [["CLIENT ID", "NAME", "SCOPES", "AGENT", "SINCE"]]
                        + consents.map {
                            [
                                $0.clientID, $0.clientName, $0.scopes.joined(separator: " "), $0.agent,
                                SecretCommand.date(Date(timeIntervalSince1970: TimeInterval($0.grantedAt))),
                            ]
                        }))
        }
    }

    struct RevokeConsent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-consent", abstract: "Withdraw a user's consent: the client's tokens are revoked and its agent disabled.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Argument(help: "The user id (usr_…).") var id: String
        @Option(help: "The client id.") var client: String

        func run() async throws {
            _ = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/users").send(
                .DELETE, "/\(id)/consents?client=\(SecretCommand.escape(client))")
            print("withdrew \(id)'s consent for \(client): its tokens are revoked")
        }
    }
}
