import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WardenContracts

/// Orgs are tenants: an org's MCP servers are seen and called by its own agents only, managed by
/// its own admins only; shared servers are everyone's. Another org's things are "not found".
@Suite(.serialized) struct TenantIsolationTests {
    struct Answer {
        var status: Int
        var body: String
        var session: String?
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
    }

    func post(_ url: String, _ body: String, token: String, session: String? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let session { request.headers.add(name: "Mcp-Session-Id", value: session) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(20))
        return Answer(
            status: Int(response.status.code), body: String(buffer: try await response.body.collect(upTo: 1 << 20)),
            session: response.headers.first(name: "Mcp-Session-Id"))
    }

    @Test func anOrgsServersAreItsOwnAndSharedServersAreEveryones() async throws {
        try await withMesh { mesh in
            try mesh.start(.vault)
            try mesh.start(.policy)
            let bench = try TestEnvironment.binaries.appendingPathComponent("warden-bench").path
            try mesh.start(.gateway, extra: ["WARDEN_ADMIN_TOKEN": AgentAuthenticationTests.adminToken, "WARDEN_AUTH_REQUIRED": "true"])
            try await mesh.waitFor("the vault and policy") { status in
                status.services.filter { [.vault, .policy].contains($0.service) }.allSatisfy { $0.status == .up }
            }
            let platform = AgentAuthenticationTests.adminToken
            let (_, acmeAgents) = try await AgentAuthenticationTests.principals(mesh, agents: 1)
            try await AgentAuthenticationTests.warden(["org", "create", "globex"], mesh)
            try await allowEverything("globex", url: mesh.gatewayURL, adminToken: platform)
            let globexOwner = try await AgentAuthenticationTests.warden(
                ["user", "add", "--org", "globex", "--email", "hank@globex.example", "--role", "owner"], mesh)
            let globexAgent = try await AgentAuthenticationTests.warden(
                ["agent", "add", "--org", "globex", "--name", "scorpio", "--owner", globexOwner], mesh)
            for (id, org) in [("shared", nil), ("acme-tools", "acme"), ("globex-tools", "globex")] as [(String, String?)] {
                let added = try await runWarden(
                    ["server", "add", id, "--command", bench, "--arg", "mcp-server", "--json"] + (org.map { ["--org", $0] } ?? []),
                    url: mesh.gatewayURL, adminToken: platform)
                #expect(added.status == 0 && added.output.contains(org.map { #""org":"\#($0)""# } ?? #""id":"shared""#), "\(added.output)")
            }
            let acmeToken = try await AgentAuthenticationTests.warden(["token", "issue", "--org", "acme", "--agent", acmeAgents[0]], mesh)
            let globexToken = try await AgentAuthenticationTests.warden(["token", "issue", "--org", "globex", "--agent", globexAgent], mesh)
            let url = mesh.gatewayURL + "/mcp"
            let initialize =
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#
            let acme = try #require(try await post(url, initialize, token: acmeToken).session)
            let globex = try #require(try await post(url, initialize, token: globexToken).session)

            // Each org lists the shared server and its own, never the other's.
            func tools(_ token: String, _ session: String) async throws -> Set<String> {
                let listed = try await post(url, #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, token: token, session: session)
                let entries = ((listed.json?["result"] as? [String: Any])?["tools"] as? [[String: Any]]) ?? []
                return Set(entries.compactMap { ($0["name"] as? String)?.components(separatedBy: "__").first })
            }
            #expect(await eventually(timeout: .seconds(20)) { (try? await tools(acmeToken, acme)) == ["shared", "acme-tools"] })
            #expect(try await tools(globexToken, globex) == ["shared", "globex-tools"])

            // Org A's token on org B's server, tool, resource or session: unknown, as if it did not exist.
            let call = #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"globex-tools__echo","arguments":{"text":"hi"}}}"#
            let crossCall = try await post(url, call, token: acmeToken, session: acme)
            #expect(
                (crossCall.json?["error"] as? [String: Any])?["message"] as? String == "Invalid params: unknown tool: globex-tools__echo",
                "\(crossCall.body)")
            #expect(try await post(url, call, token: globexToken, session: globex).json?["result"] != nil)
            let read = #"{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"globex-tools+bench://readme"}}"#
            #expect((try await post(url, read, token: acmeToken, session: acme).json?["error"] as? [String: Any])?["code"] as? Int == -32002)
            #expect(try await post(url, read, token: globexToken, session: globex).json?["result"] != nil)
            #expect(try await post(url, #"{"jsonrpc":"2.0","id":5,"method":"ping"}"#, token: acmeToken, session: globex).status == 404)

            // Org admins manage their own org's servers only.
            let globexAdmin = try await AgentAuthenticationTests.warden(["user", "admin-token", "--org", "globex", globexOwner], mesh)
            let listed = try await runWarden(["server", "list", "--json"], url: mesh.gatewayURL, adminToken: globexAdmin)
            #expect(
                listed.status == 0 && listed.output.contains("globex-tools") && !listed.output.contains("acme-tools")
                    && !listed.output.contains(#""shared""#), "\(listed.output)")
            #expect(
                try await runWarden(["server", "show", "acme-tools"], url: mesh.gatewayURL, adminToken: globexAdmin).output.contains(
                    "no server with id 'acme-tools'"))
            #expect(try await runWarden(["server", "disable", "shared"], url: mesh.gatewayURL, adminToken: globexAdmin).status != 0)
            let foreign = try await runWarden(
                ["server", "add", "sneaky", "--command", bench, "--org", "acme"], url: mesh.gatewayURL, adminToken: globexAdmin)
            #expect(foreign.status != 0 && foreign.output.contains("org 'globex' only"), "\(foreign.output)")
            let own = try await runWarden(
                ["server", "add", "globex-more", "--command", bench, "--arg", "mcp-server", "--json"], url: mesh.gatewayURL, adminToken: globexAdmin)
            #expect(own.status == 0 && own.output.contains(#""org":"globex""#), "\(own.output)")
            #expect(
                try await runWarden(["server", "update", "globex-more", "--org", "acme"], url: mesh.gatewayURL, adminToken: globexAdmin).status != 0)
            #expect(await eventually(timeout: .seconds(20)) { (try? await tools(globexToken, globex))?.contains("globex-more") == true })
            #expect(try await tools(acmeToken, acme) == ["shared", "acme-tools"])

            // An org admin's policy cannot grant another org's servers: naming them grants nothing.
            let grab = FileManager.default.temporaryDirectory.appendingPathComponent("grab-\(UUID().uuidString).yaml")
            try Data("rules:\n  - {id: grab, effect: allow, tools: [\"acme-tools__*\", \"*\"]}\n".utf8).write(to: grab)
            defer { try? FileManager.default.removeItem(at: grab) }
            let grabbed = try await runWarden(["policy", "apply", "--org", "globex", "-f", grab.path], url: mesh.gatewayURL, adminToken: globexAdmin)
            #expect(grabbed.status == 0, "\(grabbed.output)")
            #expect(try await tools(globexToken, globex) == ["shared", "globex-tools", "globex-more"])
            let grabCall = #"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"acme-tools__echo","arguments":{"text":"hi"}}}"#
            let refused = try await post(url, grabCall, token: globexToken, session: globex)
            #expect(refused.json?["result"] == nil && refused.body.contains("unknown tool: acme-tools__echo"), "\(refused.body)")
            let acmePolicy = try await runWarden(
                ["policy", "apply", "--org", "acme", "-f", grab.path], url: mesh.gatewayURL, adminToken: globexAdmin)
            #expect(acmePolicy.status != 0, "globex's admin cannot apply acme's policy: \(acmePolicy.output)")

            // Prompts and resources are decided like tools: listings show what the policy allows,
            // and reading anything else is denied whether or not it exists.
            let narrow = FileManager.default.temporaryDirectory.appendingPathComponent("narrow-\(UUID().uuidString).yaml")
            try Data(
                """
                rules:
                  - {id: tools, effect: allow, tools: ["*"]}
                  - {id: greet, effect: allow, prompts: [acme-tools__greet]}
                  - {id: items, effect: allow, resources: ["acme-tools+bench://items/*"]}

                """.utf8
            ).write(to: narrow)
            defer { try? FileManager.default.removeItem(at: narrow) }
            let narrowed = try await runWarden(["policy", "apply", "--org", "acme", "-f", narrow.path], url: mesh.gatewayURL, adminToken: platform)
            #expect(narrowed.status == 0, "\(narrowed.output)")
            func names(_ method: String, _ key: String, _ field: String) async throws -> [String] {
                let answer = try await post(url, #"{"jsonrpc":"2.0","id":7,"method":"\#(method)"}"#, token: acmeToken, session: acme)
                return (((answer.json?["result"] as? [String: Any])?[key] as? [[String: Any]]) ?? []).compactMap { $0[field] as? String }.sorted()
            }
            #expect(try await names("prompts/list", "prompts", "name") == ["acme-tools__greet"])
            #expect(try await names("resources/list", "resources", "uri") == [])
            #expect(try await names("resources/templates/list", "resourceTemplates", "uriTemplate") == ["acme-tools+bench://items/{id}"])
            func ask(_ method: String, _ params: String) async throws -> Answer {
                try await post(url, #"{"jsonrpc":"2.0","id":8,"method":"\#(method)","params":\#(params)}"#, token: acmeToken, session: acme)
            }
            #expect(try await ask("prompts/get", #"{"name":"acme-tools__greet","arguments":{"name":"Ada"}}"#).body.contains("Hello, Ada!"))
            for (method, params) in [
                ("prompts/get", #"{"name":"shared__greet"}"#), ("prompts/get", #"{"name":"shared__no_such_prompt"}"#),
                ("resources/read", #"{"uri":"acme-tools+bench://readme"}"#), ("resources/read", #"{"uri":"acme-tools+bench://nothing"}"#),
                ("resources/subscribe", #"{"uri":"acme-tools+bench://readme"}"#),
                ("resources/read", #"{"uri":"acme-tools+bench://items/../readme"}"#),
                ("resources/read", #"{"uri":"acme-tools+bench://items/%2e%2e/readme"}"#),
                ("completion/complete", #"{"ref":{"type":"ref/prompt","name":"shared__greet"},"argument":{"name":"name","value":"A"}}"#),
                ("completion/complete", #"{"ref":{"type":"ref/resource","uri":"acme-tools+bench://readme"},"argument":{"name":"x","value":"y"}}"#),
            ] {
                let denied = try await ask(method, params)
                #expect((denied.json?["error"] as? [String: Any])?["code"] as? Int == -32040, "\(method) \(params): \(denied.body)")
            }
            #expect(try await ask("resources/read", #"{"uri":"acme-tools+bench://items/7"}"#).body.contains("contents of bench://items/7"))
        }
    }
}
