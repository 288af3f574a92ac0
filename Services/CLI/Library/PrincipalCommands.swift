import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts

/// `warden org|user|agent …`: the principals, through the gateway's admin API (admin token from
/// `$WARDEN_ADMIN_TOKEN`). Each prints a short table, or JSON with `--json`.
struct OrgCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "org", abstract: "Create and list orgs (tenants); trust external identity providers.",
        subcommands: [Create.self, List.self, Configure.self, Trust.self]
    )

    struct Configure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "Change an org's settings.")
        @OptionGroup var gateway: GatewayOptions
        @Argument(help: "Org id.") var id: String
        @Option(help: "Longest agent token, in seconds (60-86400).") var maxTokenLifetime: Int?
        @Option(help: "Accept agents' raw API keys on /mcp (true or false; off by default).") var allowRawAPIKeys: Bool?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var fields: [String: JSONField] = ["id": .string(id), "name": .string("")]
            if let maxTokenLifetime { fields["maxTokenLifetime"] = .int(maxTokenLifetime) }
            if let allowRawAPIKeys { fields["rawAPIKeysOnMCP"] = .bool(allowRawAPIKeys) }
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs").send(.PATCH, "/\(id)", body: .object(fields))
            print(json ? String(decoding: body, as: UTF8.self) : "updated org \(id)")
        }
    }

    struct Trust: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Trust an OpenID Connect provider's tokens for this org (exchanged at /oauth/token, RFC 8693)."
        )
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Option(help: "The provider's issuer (its tokens' iss).") var issuer: String
        @Option(help: "A file with the provider's JWKS document.") var jwksFile: String?
        @Option(help: "The provider's JWKS URL (https; gateways fetch it and follow key rotations).") var jwksURL: String?
        @Option(help: "The audience the provider's tokens carry for Warden.") var audience: String
        @Option(help: "The claim with the user's email.") var userClaim: String = "email"
        @Option(help: "The claim with the agent's name.") var agentClaim: String = "azp"
        @Option(help: "The claim with the caller's roles or groups (carried into Warden tokens as roles).") var rolesClaim: String?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            guard (jwksFile == nil) != (jwksURL == nil) else { throw ValidationError("give either --jwks-file or --jwks-url") }
        }

        func run() async throws {
            var fields: [String: JSONField] = [
                "org": .string(org), "issuer": .string(issuer), "audience": .string(audience), "userClaim": .string(userClaim),
                "agentClaim": .string(agentClaim),
            ]
            if let jwksFile {
                guard let jwks = try? String(contentsOfFile: jwksFile, encoding: .utf8) else { throw ValidationError("cannot read \(jwksFile)") }
                fields["jwks"] = .string(jwks)
            } else {
                fields["jwks"] = .string("")
                fields["jwksURL"] = jwksURL.map { .string($0) }
            }
            if let rolesClaim { fields["rolesClaim"] = .string(rolesClaim) }
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/trusted-issuers").send(.POST, "", body: .object(fields))
            print(json ? String(decoding: body, as: UTF8.self) : "org \(org) trusts \(issuer)")
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an org.")
        @OptionGroup var gateway: GatewayOptions
        @Argument(help: "Org id: 1-32 of a-z, 0-9 and '-'.") var id: String
        @Option(help: "Display name.") var name: String?
        @Option(help: "Longest agent token, in seconds (60-86400, default 3600).") var maxTokenLifetime: Int?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var fields: [String: JSONField] = ["id": .string(id), "name": .string(name ?? id)]
            if let maxTokenLifetime { fields["maxTokenLifetime"] = .int(maxTokenLifetime) }
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs").send(.POST, "", body: .object(fields))
            print(json ? String(decoding: body, as: UTF8.self) : "created org \(id)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List orgs.")
        @OptionGroup var gateway: GatewayOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs").send(.GET, "")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let orgs = try JSONDecoder().decode(OrgList.self, from: body).orgs
            print(
                Table.render(
                    [["ID", "NAME", "MAX TOKEN LIFETIME", "RAW API KEYS ON /mcp"]]
                        + orgs.map { [$0.id, $0.name, "\($0.maxTokenLifetime) s", $0.rawAPIKeysOnMCP ? "yes" : "no"] }))
        }
    }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Add, list, disable and enable an org's users; issue org admin and approver tokens.",
        subcommands: [
            Add.self, List.self, SetAttributes.self, Disable.self, Enable.self, AdminToken.self, ApproverToken.self, SetPassword.self, Consents.self,
            RevokeConsent.self,
        ]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user to an org.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Option(help: "The user's email.") var email: String
        @Option(help: "owner, admin, approver or member.") var role: String = "member"
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/users").send(
                .POST, "", body: .object(["email": .string(email), "role": .string(role)]))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            print(try JSONDecoder().decode(User.self, from: body).id)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an org's users.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/users").send(.GET, "")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let users = try JSONDecoder().decode(UserList.self, from: body).users
            print(
                Table.render(
                    [["ID", "EMAIL", "ROLE", "DISABLED", "ATTRIBUTES"]]
                        + users.map { user in
                            [
                                user.id, user.email, user.role, user.disabled ? "yes" : "no",
                                (user.attributes ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
                            ]
                        }))
        }
    }

    struct SetAttributes: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-attributes",
            abstract:
                "Replace a user's attributes: what policies read as the user's claims (when: [{arg: $.customer_id, equals: {claim: customer_id}}]).")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Argument(help: "The user id (usr_…).") var id: String
        @Option(name: .customLong("attribute"), help: "NAME=VALUE (repeat; none clears them).") var attributes: [String] = []
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var fields: [String: JSONField] = [:]
            for attribute in attributes {
                guard let equals = attribute.firstIndex(of: "="), equals != attribute.startIndex else {
                    throw ValidationError("--attribute takes NAME=VALUE, not '\(attribute)'")
                }
                fields[String(attribute[..<equals])] = .string(String(attribute[attribute.index(after: equals)...]))
            }
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/users").send(
                .PUT, "/\(id)/attributes", body: .object(["attributes": .object(fields)]))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let user = try JSONDecoder().decode(User.self, from: body)
            print("user \(user.id): \((user.attributes ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user: the tokens of its agents stop working everywhere at once.")
        @OptionGroup var target: PrincipalTarget

        func run() async throws { try await target.switchTo("disable", kind: "users") }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a user (tokens revoked meanwhile stay revoked).")
        @OptionGroup var target: PrincipalTarget

        func run() async throws { try await target.switchTo("enable", kind: "users") }
    }
}

extension UserCommand {
    struct AdminToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "admin-token",
            abstract: "Issue an org admin token to an owner or admin: it manages that org only (use it as WARDEN_ADMIN_TOKEN)."
        )
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Argument(help: "User id (an enabled owner or admin).") var id: String
        @Flag(help: "Print JSON (token, tokenID, expiresAt).") var json = false
        @OptionGroup var output: CredentialOutput

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/admin-tokens").send(
                .POST, "", body: .object(["user": .string(id)]))
            try output.deliver(json ? String(decoding: body, as: UTF8.self) : try JSONDecoder().decode(SignedToken.self, from: body).token)
        }
    }
}

extension UserCommand {
    struct ApproverToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token",
            abstract:
                "Issue an approver token to an approver, admin or owner: it lists and decides approval requests only (use it as WARDEN_APPROVER_TOKEN)."
        )
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Argument(help: "User id (an enabled approver, admin or owner).") var id: String
        @Option(help: "Lifetime in seconds (default 3600, at most the org's maximum).") var lifetime: Int = 3600
        @Flag(help: "Print JSON (token, tokenID, expiresAt).") var json = false
        @OptionGroup var output: CredentialOutput

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/approver-tokens").send(
                .POST, "", body: .object(["user": .string(id), "lifetimeSeconds": .string(String(lifetime))]))
            try output.deliver(json ? String(decoding: body, as: UTF8.self) : try JSONDecoder().decode(SignedToken.self, from: body).token)
        }
    }
}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Add, list, disable and enable an org's agents.",
        subcommands: [Add.self, List.self, Disable.self, Enable.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an agent, owned by (acting for) a user of the org.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Option(help: "A name, unique in the org.") var name: String
        @Option(help: "The user id the agent acts for.") var owner: String
        @Option(name: .customLong("class"), help: "The agent class or role.") var agentClass: String = "default"
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let fields: [String: JSONField] = ["name": .string(name), "owner": .string(owner), "agentClass": .string(agentClass)]
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/agents").send(.POST, "", body: .object(fields))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            print(try JSONDecoder().decode(Agent.self, from: body).id)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an org's agents.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/agents").send(.GET, "")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let agents = try JSONDecoder().decode(AgentList.self, from: body).agents
            print(
                Table.render(
                    [["ID", "NAME", "CLASS", "OWNER", "DISABLED"]]
                        + agents.map { [$0.id, $0.name, $0.agentClass, $0.owner, $0.disabled ? "yes" : "no"] }))
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable an agent: its tokens stop working everywhere at once.")
        @OptionGroup var target: PrincipalTarget

        func run() async throws { try await target.switchTo("disable", kind: "agents") }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable an agent (tokens revoked meanwhile stay revoked).")
        @OptionGroup var target: PrincipalTarget

        func run() async throws { try await target.switchTo("enable", kind: "agents") }
    }
}

struct ServiceAccountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service-account", abstract: "Add, list, disable and enable an org's service accounts (automation that acts for no person).",
        subcommands: [Add.self, List.self, Disable.self, Enable.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a service account; issue it tokens and API keys like an agent (--agent svc_…).")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Option(help: "A name, unique in the org.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/service-accounts").send(
                .POST, "", body: .object(["name": .string(name)]))
            print(json ? String(decoding: body, as: UTF8.self) : try JSONDecoder().decode(ServiceAccount.self, from: body).id)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an org's service accounts.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/service-accounts").send(.GET, "")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let accounts = try JSONDecoder().decode(ServiceAccountList.self, from: body).serviceAccounts
            print(Table.render([["ID", "NAME", "DISABLED"]] + accounts.map { [$0.id, $0.name, $0.disabled ? "yes" : "no"] }))
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a service account: its tokens stop working everywhere at once.")
        @OptionGroup var target: PrincipalTarget

        func run() async throws { try await target.switchTo("disable", kind: "service-accounts") }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a service account.")
        @OptionGroup var target: PrincipalTarget

        func run() async throws { try await target.switchTo("enable", kind: "service-accounts") }
    }
}

/// The principal a disable or enable names.
struct PrincipalTarget: ParsableArguments {
    @OptionGroup var gateway: GatewayOptions
    @Option(help: "The org.") var org: String
    @Argument(help: "The id (usr_…, agt_… or svc_…).") var id: String
    @Flag(help: "Print JSON.") var json = false

    /// Disables or enables it (`kind`: "users", "agents" or "service-accounts").
    func switchTo(_ action: String, kind: String) async throws {
        let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(org)/\(kind)").send(.POST, "/\(id)/\(action)")
        print(json ? String(decoding: body, as: UTF8.self) : "\(action)d \(kind.dropLast()) \(id)")
    }
}

/// Aligned columns.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(
                in: .whitespaces)
        }
        .joined(separator: "\n")
    }
}
