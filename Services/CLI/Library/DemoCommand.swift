import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts
import WardenIdentity

/// `warden demo`: what `make up` runs once the mesh is ready. Seeds (idempotently) a demo org, its
/// owner, an agent and a demo MCP server; issues the agent a token; writes the settings a client
/// needs to a file (mode 0600) and prints a ready-to-paste MCP client configuration.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Seed a demo org, agent and MCP server on a local mesh; write its settings (admin token from $WARDEN_ADMIN_TOKEN).",
        shouldDisplay: false
    )

    @OptionGroup var gateway: GatewayOptions
    @Option(help: "Where to write WARDEN_URL, WARDEN_ADMIN_TOKEN and WARDEN_AGENT_TOKEN (mode 0600).") var out: String
    @Option(help: "The command of the demo MCP server (stdio).") var serverCommand: String
    @Option(name: .customLong("server-arg"), help: "An argument for it (repeat).") var serverArgs: [String] = []
    @Option(help: "The `warden` executable clients should launch for `warden connect`.") var wardenPath: String

    static let org = "demo", email = "owner@demo.local", agentName = "demo-agent"
    static let policy = """
        # The demo's policy (warden policy show --org demo): agents may use the demo server's tools,
        # prompts and resources.
        rules:
          - id: demo-server
            effect: allow
            tools: ["demo__*"]
            prompts: ["demo__*"]
            resources: ["demo+*"]

        """

    func run() async throws {
        let orgs = AdminClient(gateway, path: "/admin/v1/orgs")
        let known = try JSONDecoder().decode(OrgList.self, from: try await orgs.send(.GET, "")).orgs
        if let existing = known.first(where: { $0.id == Self.org }) {
            // The bootstrap may have made it (make up names it the first org): demo tokens live a day.
            if existing.maxTokenLifetime < 86_400 {
                _ = try await orgs.send(.PATCH, "/\(Self.org)", body: .object(["maxTokenLifetime": .int(86_400)]))
            }
        } else {
            _ = try await orgs.send(.POST, "", body: .object(["id": .string(Self.org), "name": .string("Demo"), "maxTokenLifetime": .int(86_400)]))
        }
        let users = try JSONDecoder().decode(UserList.self, from: try await orgs.send(.GET, "/\(Self.org)/users")).users
        var owner = users.first(where: { $0.email == Self.email })?.id ?? ""
        if owner.isEmpty {
            let created = try await orgs.send(.POST, "/\(Self.org)/users", body: .object(["email": .string(Self.email), "role": .string("owner")]))
            owner = try JSONDecoder().decode(User.self, from: created).id
        }
        let agents = try JSONDecoder().decode(AgentList.self, from: try await orgs.send(.GET, "/\(Self.org)/agents")).agents
        var agent = agents.first(where: { $0.name == Self.agentName })?.id ?? ""
        if agent.isEmpty {
            let created = try await orgs.send(
                .POST, "/\(Self.org)/agents",
                body: .object(["name": .string(Self.agentName), "owner": .string(owner), "agentClass": .string("demo")]))
            agent = try JSONDecoder().decode(Agent.self, from: created).id
        }
        let servers = AdminClient(gateway)
        struct Listing: Decodable { var servers: [MCPServerView] }
        let listing = try await servers.send(.GET, "")
        if try !JSONDecoder().decode(Listing.self, from: listing).servers.contains(where: { $0.id == "demo" }) {
            _ = try await servers.send(
                .POST, "", body: .object(["id": .string("demo"), "command": .string(serverCommand), "args": .array(serverArgs)]))
        }
        // New orgs allow nothing: the demo agent gets the demo server's tools, unless the org has
        // a policy of its own already.
        let policies = AdminClient(gateway, path: "/admin/v1/policies")
        let policy = try EnvelopeCoding.decoder().decode(PolicyVersion.self, from: try await policies.send(.GET, "?org=\(Self.org)"))
        if policy.version == 0 {
            _ = try await policies.send(.POST, "", body: .object(["org": .string(Self.org), "document": .string(Self.policy)]))
            // New orgs hold new tools for an admin's approval; the demo trusts its tools on first
            // sight (a changed definition is still held: warden tool pending --org demo).
            _ = try await AdminClient(gateway, path: "/admin/v1/tools").send(
                .POST, "/trust", body: .object(["org": .string(Self.org), "trust": .string("first-use")]))
        }
        let signed = try JSONDecoder().decode(
            SignedToken.self,
            from: try await AdminClient(gateway, path: "/admin/v1/tokens").send(
                .POST, "", body: .object(["org": .string(Self.org), "agent": .string(agent), "lifetimeSeconds": .int(86_400)]))
        )
        let admin = ProcessInfo.processInfo.environment["WARDEN_ADMIN_TOKEN"] ?? ""
        let settings = """
            # Written by make up: the local demo's settings. Secrets: keep this file private.
            WARDEN_URL=\(gateway.resolvedURL)
            WARDEN_ADMIN_TOKEN=\(admin)
            WARDEN_AGENT_TOKEN=\(signed.token)

            """
        do {
            try PrivateFile.write(settings, to: out, replacing: true)
        } catch {
            throw ValidationError(error.description)
        }
        let config = """
            {"mcpServers": {"warden": {"command": "\(wardenPath)", "args": ["connect", "--url", "\(gateway.resolvedURL)"], "env": {"WARDEN_AGENT_TOKEN": "<WARDEN_AGENT_TOKEN from \(out)>"}}}}
            """
        print(
            """
            demo org '\(Self.org)', owner \(owner), agent \(agent) ('\(Self.agentName)'), MCP server 'demo'
            policy    agents of '\(Self.org)' may use the demo server's tools, prompts and resources (warden policy show --org \(Self.org)); other tools are denied
            tools     new tools are trusted on first sight; a changed definition is held (warden tool pending --org \(Self.org))
            settings  \(out) (mode 0600: WARDEN_URL, WARDEN_ADMIN_TOKEN, WARDEN_AGENT_TOKEN; the agent token is valid 24 h)
            MCP client configuration (Claude Desktop and others that launch a process):
              \(config)
            Streamable HTTP clients: \(gateway.resolvedURL)/mcp with header "Authorization: Bearer $WARDEN_AGENT_TOKEN"
            """)
    }
}
