import AsyncHTTPClient
import Crypto
import Foundation
import JWTKit
import NIOCore
import NIOHTTP1
import PostgresNIO
import Testing
import WardenContracts
import WardenIdentity
import WardenMCP
import WardenServiceKit

/// Agent tokens end to end: the vault creates and seals a signing key and signs; the gateway
/// publishes the keys, validates tokens locally and refuses bad ones with RFC 6750 answers.
@Suite(.serialized) struct AgentAuthenticationTests {
    static let adminToken = TestMesh.adminToken

    func get(_ url: String) async throws -> (status: Int, body: String, headers: HTTPHeaders) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)), response.headers)
    }

    func post(_ url: String, _ body: String, token: String?) async throws -> (status: Int, body: String, headers: HTTPHeaders) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)), response.headers)
    }

    /// Runs `warden` against the mesh's gateway as its admin; returns its trimmed output.
    @discardableResult
    static func warden(_ arguments: [String], _ mesh: TestMesh, expectSuccess: Bool = true) async throws -> String {
        let (status, output) = try await runWarden(arguments, url: mesh.gatewayURL, adminToken: adminToken)
        if expectSuccess { #expect(status == 0, "warden \(arguments.joined(separator: " ")): \(output)") }
        return output
    }

    /// Org `acme`, its owner, and `count` agents acting for the owner; returns the user and agent ids.
    static func principals(_ mesh: TestMesh, agents count: Int) async throws -> (user: String, agents: [String]) {
        try await warden(["org", "create", "acme", "--max-token-lifetime", "3600"], mesh)
        try await allowEverything("acme", url: mesh.gatewayURL, adminToken: adminToken)
        let user = try await warden(["user", "add", "--org", "acme", "--email", "ada@acme.example", "--role", "owner"], mesh)
        var agents: [String] = []
        for index in 0..<count {
            agents.append(try await warden(["agent", "add", "--org", "acme", "--name", "agent-\(index)", "--owner", user], mesh))
        }
        return (user, agents)
    }

    func issue(_ mesh: TestMesh, agent: String) async throws -> String {
        try await Self.warden(["token", "issue", "--org", "acme", "--agent", agent], mesh)
    }

    /// The vault, policy and a gateway that requires agent tokens, fronting `warden-bench mcp-server`
    /// over stdio as `bench`; ready when all three and the server are.
    static func withAuthenticatedBenchMesh(_ body: (TestMesh) async throws -> Void) async throws {
        try await withMesh { mesh in
            try mesh.start(.vault)
            try mesh.start(.policy)
            let bench = try TestEnvironment.binaries.appendingPathComponent("warden-bench").path
            let servers = FileManager.default.temporaryDirectory.appendingPathComponent("warden-auth-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: servers) }
            try Data(#"{"servers": [{"id": "bench", "command": "\#(bench)", "args": ["mcp-server"]}]}"#.utf8).write(to: servers)
            try mesh.start(
                .gateway, extra: ["WARDEN_ADMIN_TOKEN": adminToken, "WARDEN_AUTH_REQUIRED": "true", "WARDEN_MCP_SERVERS_FILE": servers.path])
            try await mesh.waitFor("the gateway, its server, the vault and policy", timeout: .seconds(60)) { status in
                status.gateway.ready && status.mcpServers?.first?.state == "ready"
                    && status.services.filter { [.vault, .policy].contains($0.service) }.allSatisfy { $0.status == .up }
            }
            try await body(mesh)
        }
    }

    @Test func tokensFromTheVaultOpenTheGatewayAndBadOnesAreRefused() async throws {
        try await Self.withAuthenticatedBenchMesh { mesh in
            let url = mesh.gatewayURL + "/mcp"
            let (user, agents) = try await Self.principals(mesh, agents: 4)

            // Discovery documents.
            let metadata = try await get(mesh.gatewayURL + "/.well-known/oauth-protected-resource")
            #expect(metadata.status == 200 && metadata.body.contains(#""resource":"\#(url)""#), "\(metadata.body)")
            let jwks = try await get(mesh.gatewayURL + "/.well-known/jwks.json")
            let keys = VerificationKey.fromJWKS(Data(jwks.body.utf8))
            #expect(jwks.status == 200 && keys.count == 1, "\(jwks.body)")

            // No token: 401 pointing at the metadata.
            let initialize =
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#
            let anonymous = try await post(url, initialize, token: nil)
            #expect(anonymous.status == 401)
            #expect(
                anonymous.headers.first(name: "WWW-Authenticate")
                    == #"Bearer resource_metadata="\#(mesh.gatewayURL)/.well-known/oauth-protected-resource", scope="mcp""#)

            // A token issued by the admin opens a session.
            let token = try await issue(mesh, agent: agents[0])
            let opened = try await post(url, initialize, token: token)
            #expect(opened.status == 200 && opened.headers.first(name: "Mcp-Session-Id") != nil, "\(opened.body)")

            // Bad tokens: 401 with a precise error_description; nothing crashes.
            let parts = token.split(separator: ".").map(String.init)
            let none = Base64URL.encode(Array(#"{"alg":"none","kid":"\#(keys[0].kid)"}"#.utf8))
            let foreign = try await AgentTokenIssuer(key: SigningKey(kid: keys[0].kid)).sign(
                AgentTokenClaims(
                    iss: mesh.gatewayURL, aud: url, sub: agents[0], org: "acme", usr: user, scope: "mcp", jti: "x", iat: 0, nbf: 0, exp: 4_000_000_000
                )
            )
            let cases: [(String, String)] = [
                ("garbage", "not a signed JWT"),
                ("\(none).\(parts[1]).\(parts[2])", "'none' is not accepted"),
                (foreign, "the signature is not valid"),
                (String(repeating: "a", count: 10_000), "larger than"),
            ]
            for (bad, expected) in cases {
                let refused = try await post(url, initialize, token: bad)
                let challenge = refused.headers.first(name: "WWW-Authenticate") ?? ""
                #expect(refused.status == 401 && challenge.contains(#"error="invalid_token""#) && challenge.contains(expected), "\(challenge)")
            }
            var basic = HTTPClientRequest(url: url)
            basic.method = .POST
            basic.headers.add(name: "Authorization", value: "Basic YTpi")
            #expect(try await HTTPClient.shared.execute(basic, timeout: .seconds(10)).status == .unauthorized)

            // A token without the `mcp` scope: 403 insufficient_scope.
            let narrow = try await Self.warden(["token", "issue", "--org", "acme", "--agent", agents[0], "--scope", "reports"], mesh)
            let scoped = try await post(url, initialize, token: narrow)
            let scopeChallenge = scoped.headers.first(name: "WWW-Authenticate") ?? ""
            #expect(
                scoped.status == 403 && scopeChallenge.contains(#"error="insufficient_scope""#) && scopeChallenge.contains(#"scope="mcp""#),
                "\(scopeChallenge)")

            // Keys rotate with overlap: tokens signed before stay valid, new ones use the new key.
            let rotated = try await Self.warden(["token", "rotate-keys"], mesh)
            #expect(rotated.contains("still validating \(keys[0].kid)"), "\(rotated)")
            #expect(try await post(url, initialize, token: token).status == 200, "a token signed before the rotation")
            let afterRotation = try await issue(mesh, agent: agents[0])
            let newStatus = try await post(url, initialize, token: afterRotation).status
            #expect(afterRotation != token && newStatus == 200)
            let published = try await get(mesh.gatewayURL + "/.well-known/jwks.json")
            #expect(VerificationKey.fromJWKS(Data(published.body.utf8)).count == 2)

            // Another agent cannot use the session.
            let session = try #require(opened.headers.first(name: "Mcp-Session-Id"))
            let other = try await issue(mesh, agent: agents[1])
            var ping = HTTPClientRequest(url: url)
            ping.method = .POST
            ping.headers.add(name: "Content-Type", value: "application/json")
            ping.headers.add(name: "Mcp-Session-Id", value: session)
            ping.headers.add(name: "Authorization", value: "Bearer \(other)")
            ping.body = .bytes(ByteBuffer(string: #"{"jsonrpc":"2.0","id":2,"method":"ping"}"#))
            #expect(try await HTTPClient.shared.execute(ping, timeout: .seconds(10)).status == .notFound)

            // The official client through `warden connect`, with the token from the environment.
            let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/mcp_client_check.py").path
            let warden = try TestEnvironment.binaries.appendingPathComponent("warden").path
            let bridged = try ChildProcess(
                name: "python-auth", executable: URL(fileURLWithPath: try StdioServerTests.python),
                arguments: [
                    script, "stdio:[\"\(warden)\", \"connect\", \"--url\", \"\(mesh.gatewayURL)\"]", "legacy", "bench__echo",
                    #"{"text": "signed in"}"#,
                ],
                environment: ["WARDEN_AGENT_TOKEN": token]
            )
            #expect(await bridged.waitForExit(timeout: .seconds(60)) == 0, "\(bridged.output)")
            #expect(bridged.output.contains("signed in"), "\(bridged.output)")

            // An agent exchanges an API key for a token (client credentials) and connects with it.
            let created = try ChildProcess(
                name: "warden-apikey", executable: try TestEnvironment.binaries.appendingPathComponent("warden"),
                arguments: ["apikey", "create", "--agent", agents[2], "--org", "acme", "--json"],
                environment: ["WARDEN_URL": mesh.gatewayURL, "WARDEN_ADMIN_TOKEN": Self.adminToken]
            )
            #expect(await created.waitForExit(timeout: .seconds(30)) == 0, "\(created.output)")
            let apiKey = try JSONDecoder().decode(CreatedAPIKey.self, from: Data(created.output.utf8))
            func exchange(_ form: String, basic: String? = nil) async throws -> (status: Int, body: String) {
                var request = HTTPClientRequest(url: mesh.gatewayURL + "/oauth/token")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                if let basic { request.headers.add(name: "Authorization", value: "Basic " + Data(basic.utf8).base64EncodedString()) }
                request.body = .bytes(ByteBuffer(string: form))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
            }
            let exchanged = try await exchange("grant_type=client_credentials&client_id=\(apiKey.id)&client_secret=\(apiKey.key)")
            #expect(exchanged.status == 200 && exchanged.body.contains(#""token_type":"Bearer""#), "\(exchanged.body)")
            let accessToken = try #require(
                (try JSONSerialization.jsonObject(with: Data(exchanged.body.utf8)) as? [String: Any])?["access_token"] as? String)
            #expect(try await post(url, initialize, token: accessToken).status == 200)
            // ...and the official client connects with it over Streamable HTTP, in its default (auto) mode.
            let direct = try ChildProcess(
                name: "python-apikey", executable: URL(fileURLWithPath: try StdioServerTests.python),
                arguments: [script, url, "auto", "bench__echo", #"{"text": "exchanged"}"#], environment: ["MCP_BEARER_TOKEN": accessToken]
            )
            #expect(await direct.waitForExit(timeout: .seconds(60)) == 0, "\(direct.output)")
            #expect(direct.output.contains("exchanged") && direct.output.contains("2026-07-28"), "\(direct.output)")
            let secretOnly = String(apiKey.key.dropFirst("wdn_\(apiKey.id)_".count))
            #expect(try await exchange("grant_type=client_credentials", basic: "\(apiKey.id):\(secretOnly)").status == 200)
            let wrong = try await exchange(
                "grant_type=client_credentials&client_id=\(apiKey.id)&client_secret=wdn_\(apiKey.id)_\(String(repeating: "A", count: 43))")
            #expect(wrong.status == 401 && wrong.body.contains("invalid_client"), "\(wrong.body)")
            #expect(try await exchange("grant_type=password&username=a&password=b").body.contains("unsupported_grant_type"))
            let server = try await get(mesh.gatewayURL + "/.well-known/oauth-authorization-server")
            #expect(server.body.contains(#""token_endpoint":"\#(mesh.gatewayURL)/oauth/token""#), "\(server.body)")
            // Raw API keys on /mcp: refused unless the org allows them; a revoked key stops at once.
            let refusedRaw = try await post(url, initialize, token: apiKey.key)
            #expect(refusedRaw.status == 401 && (refusedRaw.headers.first(name: "WWW-Authenticate") ?? "").contains("does not accept raw API keys"))
            try await Self.warden(["org", "set", "acme", "--allow-raw-api-keys", "true"], mesh)
            #expect(try await post(url, initialize, token: apiKey.key).status == 200)
            #expect(try await post(url, initialize, token: "wdn_000000000000_" + String(repeating: "B", count: 43)).status == 401)

            // A revoked key exchanges no more, and is refused raw at once.
            let revoke = try ChildProcess(
                name: "warden-apikey", executable: try TestEnvironment.binaries.appendingPathComponent("warden"),
                arguments: ["apikey", "revoke", apiKey.id],
                environment: ["WARDEN_URL": mesh.gatewayURL, "WARDEN_ADMIN_TOKEN": Self.adminToken]
            )
            #expect(await revoke.waitForExit(timeout: .seconds(30)) == 0, "\(revoke.output)")
            #expect(try await exchange("grant_type=client_credentials&client_id=\(apiKey.id)&client_secret=\(apiKey.key)").status == 401)
            #expect(try await post(url, initialize, token: apiKey.key).status == 401, "the gateway's 30-second reuse ends with the revocation")
            #expect(mesh.processes.values.allSatisfy { !$0.output.contains(secretOnly) }, "the key's secret is in no log")
            // Nor in any column of the vault's tables: keys are hashed, signing keys sealed.
            let dump = try await withDatabaseClient(mesh.database, as: .vault) { client in
                var text = ""
                for table in ["api_keys", "signing_keys"] {
                    let rows = try await client.query(
                        PostgresQuery(unsafeSQL: "SELECT row_to_json(t)::text FROM \(table) t"), logger: TestEnvironment.logger)
                    for try await row in rows.decode(String.self) { text += row }
                }
                return text
            }
            #expect(
                dump.contains(apiKey.id) && !dump.contains(secretOnly) && !dump.contains("PRIVATE"), "only ids, hashes and sealed keys are stored")

            // An org admin manages its org only.
            try await Self.warden(["org", "create", "globex"], mesh)
            let orgAdmin = try await Self.warden(["user", "admin-token", "--org", "acme", user], mesh)
            func asOrgAdmin(_ arguments: [String]) async throws -> (status: Int32?, output: String) {
                try await runWarden(arguments, url: mesh.gatewayURL, adminToken: orgAdmin)
            }
            let listed = try await asOrgAdmin(["org", "list", "--json"])
            #expect(listed.status == 0 && listed.output.contains("acme") && !listed.output.contains("globex"), "\(listed.output)")
            #expect(try await asOrgAdmin(["agent", "list", "--org", "acme"]).status == 0)
            let foreignOrg = try await asOrgAdmin(["agent", "list", "--org", "globex"])
            #expect(foreignOrg.status != 0 && foreignOrg.output.contains("no org 'globex'"), "\(foreignOrg.output)")
            // The shared server is the platform's: an org admin lists only its org's servers (none here).
            let registry = try await asOrgAdmin(["server", "list"])
            #expect(registry.status == 0 && !registry.output.contains("bench"), "\(registry.output)")
            #expect(try await asOrgAdmin(["server", "disable", "bench"]).output.contains("no server with id 'bench'"))
            #expect(try await asOrgAdmin(["token", "rotate-keys"]).output.contains("platform admin"))
            #expect(try await asOrgAdmin(["token", "issue", "--org", "acme", "--agent", agents[0]]).status == 0)
            #expect(try await asOrgAdmin(["org", "create", "initech"]).status != 0, "creating orgs is the platform's")
            #expect(try await post(url, initialize, token: orgAdmin).status == 401, "an admin token does not open /mcp")

            // A service account: tokens like an agent's, acting for itself; disabling it revokes them.
            let service = try await Self.warden(["service-account", "add", "--org", "acme", "--name", "nightly-sync"], mesh)
            let serviceToken = try await issue(mesh, agent: service)
            #expect(try await post(url, initialize, token: serviceToken).status == 200)
            let inspected = try await Self.warden(["token", "inspect", serviceToken, "--verify"], mesh)
            #expect(inspected.contains("acting for \(service)") && inspected.contains("verdict    valid"), "\(inspected)")
            let inspectedJSON = try await Self.warden(["token", "inspect", serviceToken, "--verify", "--json"], mesh)
            #expect(inspectedJSON.contains(#""usr":"\#(service)""#) && inspectedJSON.contains(#""valid":true"#), "\(inspectedJSON)")
            let tampered = serviceToken.prefix(serviceToken.count - 4) + (serviceToken.hasSuffix("AAAA") ? "BBBB" : "AAAA")
            #expect(try await Self.warden(["token", "inspect", String(tampered), "--verify"], mesh).contains("INVALID"))
            try await Self.warden(["service-account", "disable", "--org", "acme", service], mesh)
            #expect(try await post(url, initialize, token: serviceToken).status == 401)

            // Disabled agents and users: their tokens stop working, and they get no new ones.
            let fourth = try await issue(mesh, agent: agents[3])
            #expect(try await post(url, initialize, token: fourth).status == 200)
            try await Self.warden(["agent", "disable", "--org", "acme", agents[3]], mesh)
            let afterDisable = try await post(url, initialize, token: fourth)
            #expect(afterDisable.status == 401 && (afterDisable.headers.first(name: "WWW-Authenticate") ?? "").contains("revoked"))
            let refusedIssue = try await Self.warden(["token", "issue", "--org", "acme", "--agent", agents[3]], mesh, expectSuccess: false)
            #expect(refusedIssue.contains("disabled"), "\(refusedIssue)")
            try await Self.warden(["user", "disable", "--org", "acme", user], mesh)
            #expect(try await post(url, initialize, token: other).status == 401, "the user's other agents lose their tokens too")
            #expect(
                try await Self.warden(["token", "issue", "--org", "acme", "--agent", agents[1]], mesh, expectSuccess: false).contains("disabled"))
            #expect(try await asOrgAdmin(["agent", "list", "--org", "acme"]).status != 0, "a disabled user's admin token is revoked too")
            // Unknown org or agent: clear errors.
            #expect(
                try await Self.warden(["token", "issue", "--org", "nope", "--agent", agents[0]], mesh, expectSuccess: false).contains("no agent"))
            #expect(try await Self.warden(["org", "create", "Bad_Org"], mesh, expectSuccess: false).contains("out of range"))

            // The private key never leaves the vault in the clear: not in its table, not in any log.
            #expect(mesh.processes.values.allSatisfy { !$0.output.contains("PRIVATE KEY") })
        }
    }

    /// Policy replicas remember resolved agents (every token's check); a change made through one is
    /// seen by both at once: a disabled agent gets no token from either, and a shorter org lifetime
    /// holds for the next token whichever replica checks it.
    @Test func everyPolicyReplicaForgetsADisabledAgentAndAChangedOrgAtOnce() async throws {
        try await withMesh { mesh in
            try mesh.start(.vault)
            let policyPorts = [freePort(), freePort()]
            // Resolutions kept for five minutes: only the announcement of a change can make them go.
            let remembering = ["WARDEN_POLICY_RESOLUTION_CACHE_SECONDS": "300"]
            try mesh.start(.policy, extra: remembering.merging(["WARDEN_HTTP_PORT": "\(policyPorts[0])"]) { $1 })
            try mesh.start(.policy, name: "policy-2", extra: remembering.merging(["WARDEN_HTTP_PORT": "\(policyPorts[1])"]) { $1 })
            try mesh.start(.gateway)
            try await mesh.waitFor("the vault and both policy replicas") { status in
                status.services.filter { $0.service == .vault }.allSatisfy { $0.status == .up }
                    && (status.services.first { $0.service == .policy }?.readyInstances ?? 0) >= 2
            }
            let (_, agents) = try await Self.principals(mesh, agents: 2)

            /// Resolutions each policy replica has answered (its own `/metrics`).
            func resolutions() async -> [Int] {
                var counts: [Int] = []
                for port in policyPorts {
                    let text = (try? await ObservabilityTests().get("http://127.0.0.1:\(port)/metrics").body) ?? ""
                    counts.append(
                        text.split(separator: "\n").filter { $0.hasPrefix("warden_nats_handled_total{") && $0.contains("agents.resolve") }
                            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0) { $0 + Int($1) })
                }
                return counts
            }
            /// Issues tokens for `agent` (at least four) until both replicas have answered a resolution
            /// since the first; returns what each attempt printed.
            func issueOnBothReplicas(_ agent: String, lifetime: Int = 900, expectSuccess: Bool) async throws -> [String] {
                let before = await resolutions()
                var outputs: [String] = []
                while outputs.count < 64 {
                    outputs.append(
                        try await Self.warden(
                            ["token", "issue", "--org", "acme", "--agent", agent, "--lifetime", "\(lifetime)"], mesh, expectSuccess: expectSuccess))
                    let now = await resolutions()
                    if outputs.count >= 4, zip(now, before).allSatisfy({ $0 > $1 }) { return outputs }
                }
                Issue.record("64 tokens were issued and the policy replicas did not both answer: \(await resolutions())")
                return outputs
            }

            // Both replicas check (and remember) the agent.
            let first = try await issueOnBothReplicas(agents[0], expectSuccess: true)
            #expect(first.allSatisfy { $0.split(separator: ".").count == 3 }, "\(first)")
            // Disabled through one replica: neither issues it a token any more.
            try await Self.warden(["agent", "disable", "--org", "acme", agents[0]], mesh)
            let refused = try await issueOnBothReplicas(agents[0], expectSuccess: false)
            #expect(refused.allSatisfy { $0.contains("disabled") }, "\(refused)")

            // The org's longest token shortened through one replica: neither issues a longer one.
            let long = try await issueOnBothReplicas(agents[1], lifetime: 600, expectSuccess: true)
            #expect(long.allSatisfy { $0.split(separator: ".").count == 3 }, "\(long)")
            try await Self.warden(["org", "set", "acme", "--max-token-lifetime", "120"], mesh)
            let shortened = try await issueOnBothReplicas(agents[1], lifetime: 600, expectSuccess: false)
            #expect(shortened.allSatisfy { $0.contains("1 to 120 seconds") }, "\(shortened)")
        }
    }
}

/// A request belongs to the agent that sent it: another agent can neither resume its stream, cancel
/// it nor answer for it, in either protocol era.
@Suite(.serialized) struct RequestOwnershipTests {
    @Test func anotherAgentCanNeitherResumeNorCancelNorAnswerARequest() async throws {
        try await AgentAuthenticationTests.withAuthenticatedBenchMesh { mesh in
            let (_, agents) = try await AgentAuthenticationTests.principals(mesh, agents: 2)
            let owner = try await AgentAuthenticationTests().issue(mesh, agent: agents[0])
            let intruder = try await AgentAuthenticationTests().issue(mesh, agent: agents[1])
            let url = mesh.gatewayURL + "/mcp"
            func authorized(_ request: HTTPClientRequest, _ token: String) -> HTTPClientRequest {
                var request = request
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                return request
            }
            func status(_ request: HTTPClientRequest) async throws -> Int {
                Int(try await HTTPClient.shared.execute(request, timeout: .seconds(10)).status.code)
            }

            // Handshake era: the owner's call streams; the client drops the stream after its first event.
            let opened = try await AgentAuthenticationTests().post(url, EventStreamTests.initialize, token: owner)
            let session = try #require(opened.headers.first(name: "Mcp-Session-Id"), "\(opened.body)")
            let head = try await EventStreamTests.events(
                authorized(EventStreamTests.request(url, EventStreamTests.slowCall(id: 4, milliseconds: 1_500), session: session), owner), upTo: 1)
            let lastSeen = try #require(head.first?.id)
            // The intruder names the owner's session: resuming, cancelling and answering are all "not found".
            #expect(try await status(authorized(EventStreamTests.resume(url, session: session, after: lastSeen), intruder)) == 404)
            let cancel = #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4}}"#
            #expect(try await status(authorized(EventStreamTests.request(url, cancel, session: session), intruder)) == 404)
            let answer = #"{"jsonrpc":"2.0","id":"warden-1","result":{"action":"accept","content":{}}}"#
            #expect(try await status(authorized(EventStreamTests.request(url, answer, session: session), intruder)) == 404)
            // The owner resumes and gets the call's own result: it was not cancelled.
            let rest = try await EventStreamTests.events(authorized(EventStreamTests.resume(url, session: session, after: lastSeen), owner))
            #expect(rest.last?.data.contains(#""id":4,"result":{"content":[{"type":"text","text":"done"}]"#) == true, "\(rest)")

            // Stateless era: there is no session to name, nothing to resume and no back channel; a
            // cancellation is dropped for everyone (the owner's too), so another agent's cannot reach
            // the call. This guards against cancellation being added there without an owner check.
            let meta = #""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#
            func stateless(_ body: String, method: String, name: String? = nil, token: String) -> HTTPClientRequest {
                var request = EventStreamTests.request(url, body)
                request.headers.add(name: "MCP-Protocol-Version", value: "2026-07-28")
                request.headers.add(name: "Mcp-Method", value: method)
                if let name { request.headers.add(name: "Mcp-Name", value: name) }
                return authorized(request, token)
            }
            let progressMeta =
                #""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"progressToken":"p7"}"#
            let call = stateless(
                #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"bench__slow","arguments":{"ms":1000},\#(progressMeta)}}"#,
                method: "tools/call", name: "bench__slow", token: owner)
            // Once the call's first progress event arrives (it runs), the intruder tries to cancel it.
            let events = try await EventStreamTests.events(call) {
                let foreignCancel = stateless(
                    #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,\#(meta)}}"#, method: "notifications/cancelled",
                    token: intruder)
                let refused = try await status(foreignCancel)
                #expect(refused == 202)
            }
            let finished = events.map(\.data).joined(separator: "\n")
            #expect(finished.contains(#""text":"done""#), "\(finished)")
        }
    }
}

/// Revocation reaches every gateway replica within a second; a revoked agent's streams close.
@Suite(.serialized) struct RevocationTests {
    /// Whether a response body ends (the server closed the stream) within `limit`.
    static func ends(_ body: HTTPClientResponse.Body, within limit: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do {
                    for try await _ in body {}
                    return true
                } catch {
                    return false
                }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    @Test func aTokenRevokedOnOneReplicaFailsOnTheOtherWithinASecond() async throws {
        try await withMesh { mesh in
            try mesh.start(.vault)
            try mesh.start(.policy)
            let admin = AgentAuthenticationTests.adminToken
            let secondPort = freePort()
            try mesh.start(.gateway, extra: ["WARDEN_ADMIN_TOKEN": admin, "WARDEN_AUTH_REQUIRED": "true"])
            // Both replicas issue tokens for the same audience (one public URL, as behind a load balancer).
            try mesh.start(
                .gateway, name: "gateway-2",
                extra: [
                    "WARDEN_ADMIN_TOKEN": admin, "WARDEN_AUTH_REQUIRED": "true", "WARDEN_HTTP_PORT": "\(secondPort)",
                    "WARDEN_PUBLIC_URL": mesh.gatewayURL,
                ])
            let first = mesh.gatewayURL + "/mcp", second = "http://127.0.0.1:\(secondPort)/mcp"
            try await mesh.waitFor("the vault and policy") { status in
                status.services.filter { [.vault, .policy].contains($0.service) }.allSatisfy { $0.status == .up }
            }
            let (_, agents) = try await AgentAuthenticationTests.principals(mesh, agents: 10)
            let tests = AgentAuthenticationTests()
            let initialize =
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#

            func ping(_ url: String, _ token: String, session: String) async throws -> Int {
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Mcp-Session-Id", value: session)
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                request.body = .bytes(ByteBuffer(string: #"{"jsonrpc":"2.0","id":2,"method":"ping"}"#))
                return Int(try await HTTPClient.shared.execute(request, timeout: .seconds(5)).status.code)
            }
            func revoke(_ body: String) async throws {
                var request = HTTPClientRequest(url: mesh.gatewayURL + "/admin/v1/tokens/revoke")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(admin)")
                request.body = .bytes(ByteBuffer(string: body))
                #expect(try await HTTPClient.shared.execute(request, timeout: .seconds(5)).status == .ok)
            }

            var propagation: [Duration] = []
            var revokedSessions: [String] = []
            for round in 0..<10 {
                let output = try await AgentAuthenticationTests.warden(["token", "issue", "--org", "acme", "--agent", agents[round], "--json"], mesh)
                let signed = try JSONDecoder().decode(SignedToken.self, from: Data(output.utf8))
                let opened = try await tests.post(first, initialize, token: signed.token)
                let session = try #require(opened.headers.first(name: "Mcp-Session-Id"), "\(opened.body)")
                revokedSessions.append(session)
                #expect(
                    await eventually(timeout: .seconds(10)) { (try? await ping(second, signed.token, session: session)) == 200 },
                    "the second replica serves the session")
                // Revoking an agent (odd rounds) closes the standing stream it holds open on the other replica.
                var standing: HTTPClientResponse?
                if round % 2 == 1 {
                    var request = HTTPClientRequest(url: second)
                    request.headers.add(name: "Accept", value: "text/event-stream")
                    request.headers.add(name: "Mcp-Session-Id", value: session)
                    request.headers.add(name: "Authorization", value: "Bearer \(signed.token)")
                    standing = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                    #expect(standing?.status == .ok)
                }
                let start = ContinuousClock.now
                try await revoke(round % 2 == 0 ? #"{"tokenID":"\#(signed.tokenID)"}"# : #"{"agent":"\#(agents[round])"}"#)
                if let standing {
                    #expect(await Self.ends(standing.body, within: .seconds(1)), "the revoked agent's open stream closed")
                }
                var status = 0
                while ContinuousClock.now - start < .seconds(2) {
                    status = try await ping(second, signed.token, session: session)
                    if status == 401 { break }
                }
                propagation.append(ContinuousClock.now - start)
                #expect(status == 401, "the revoked token is refused on the other replica")
            }
            propagation.sort()
            print("revocation propagation to a second replica (10 rounds): median \(propagation[5]), max \(propagation[9])")
            #expect(propagation[9] < .seconds(1))

            // Revoking an agent's tokens also ended its sessions: a token issued afterwards opens a new one.
            try await Task.sleep(for: .seconds(1.1))
            let output = try await AgentAuthenticationTests.warden(["token", "issue", "--org", "acme", "--agent", agents[1], "--json"], mesh)
            let fresh = try JSONDecoder().decode(SignedToken.self, from: Data(output.utf8))
            #expect(try await ping(second, fresh.token, session: revokedSessions[1]) == 404, "the revoked agent's old session is closed")
            let reopened = try await tests.post(first, initialize, token: fresh.token)
            #expect(reopened.status == 200, "\(reopened.body)")
        }
    }
}

/// Federation: an org trusts an external provider; its tokens are exchanged (RFC 8693) for Warden
/// agent tokens; tokens from anyone else are refused with a precise reason.
@Suite(.serialized) struct FederationTests {
    /// An identity provider of our own: a P-256 key and its JWKS.
    struct Provider {
        let key = P256.Signing.PrivateKey()
        let issuer: String
        var jwks: String {
            let raw = Array(key.publicKey.rawRepresentation)
            return
                #"{"keys":[{"kty":"EC","crv":"P-256","x":"\#(Base64URL.encode(Array(raw[0..<32])))","y":"\#(Base64URL.encode(Array(raw[32...])))","kid":"idp-1","alg":"ES256","use":"sig"}]}"#
        }

        func token(_ claims: [String: String], expiresIn: Int64 = 600) async throws -> String {
            struct Claims: JWTPayload {
                var fields: [String: String]
                var exp: Int64
                func verify(using algorithm: some JWTAlgorithm) async throws {}
                struct Key: CodingKey {
                    var stringValue: String
                    var intValue: Int? { nil }
                    init(stringValue: String) { self.stringValue = stringValue }
                    init?(intValue: Int) { nil }
                }
                init(fields: [String: String], exp: Int64) {
                    self.fields = fields
                    self.exp = exp
                }
                init(from decoder: any Decoder) throws { fatalError("not decoded in tests") }
                func encode(to encoder: any Encoder) throws {
                    var container = encoder.container(keyedBy: Key.self)
                    for (name, value) in fields { try container.encode(value, forKey: Key(stringValue: name)) }
                    try container.encode(exp, forKey: Key(stringValue: "exp"))
                }
            }
            let keys = JWTKeyCollection()
            await keys.add(ecdsa: try ES256PrivateKey(backing: key), kid: "idp-1")
            return try await keys.sign(Claims(fields: claims.merging(["iss": issuer]) { $1 }, exp: Int64(Date().timeIntervalSince1970) + expiresIn))
        }
    }

    /// A mesh with the vault, policy and a gateway requiring tokens, and org acme with one agent.
    /// The client's credential stops at the gateway: neither an HTTP server's request headers nor a
    /// stdio server's environment carry it (each server reports what it received).
    @Test func theClientsTokenNeverReachesAServer() async throws {
        let port = freePort()
        let server = try await HTTPDownstreamTests.sdkServer(port: port)
        defer { kill(server.pid, SIGKILL) }
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/http_echo_server.py").path
        let python = try StdioServerTests.python
        let servers = FileManager.default.temporaryDirectory.appendingPathComponent("warden-token-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: servers) }
        try Data(
            #"{"servers": [{"id": "web", "url": "http://127.0.0.1:\#(port)/mcp"}, {"id": "local", "command": "\#(python)", "args": ["\#(script)", "stdio"]}]}"#
                .utf8
        ).write(to: servers)
        try await withMesh { mesh in
            try mesh.start(.vault)
            try mesh.start(.policy)
            try mesh.start(
                .gateway,
                extra: [
                    "WARDEN_ADMIN_TOKEN": AgentAuthenticationTests.adminToken, "WARDEN_AUTH_REQUIRED": "true",
                    "WARDEN_MCP_SERVERS_FILE": servers.path,
                ])
            try await mesh.waitFor("the gateway, the vault and policy", timeout: .seconds(60)) { status in
                status.gateway.ready && (status.mcpServers ?? []).filter { $0.state == "ready" }.count == 2
                    && status.services.filter { [.vault, .policy].contains($0.service) }.allSatisfy { $0.status == .up }
            }
            let (_, agents) = try await AgentAuthenticationTests.principals(mesh, agents: 1)
            let token = try await AgentAuthenticationTests().issue(mesh, agent: agents[0])
            let url = mesh.gatewayURL + "/mcp"
            let opened = try await AgentAuthenticationTests().post(url, MCPGatewayTests.initialize, token: token)
            let session = try #require(opened.headers.first(name: "Mcp-Session-Id"), "\(opened.body)")
            func call(_ tool: String) async throws -> String {
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                request.headers.add(name: "Mcp-Session-Id", value: session)
                request.body = .bytes(ByteBuffer(string: #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"\#(tool)"}}"#))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                return String(buffer: try await response.body.collect(upTo: 1 << 20))
            }
            let headers = try await call("web__request_headers")
            #expect(headers.contains("content-type") && headers.contains("mcp-session-id"), "the server reported its request headers: \(headers)")
            #expect(!headers.lowercased().contains("authorization") && !headers.contains(token), "\(headers)")
            let environment = try await call("local__environment")
            #expect(environment.contains("PATH"), "the server reported its environment: \(environment)")
            #expect(
                !environment.contains(token) && !environment.contains(AgentAuthenticationTests.adminToken) && !environment.contains("WARDEN_"),
                "\(environment)")
        }
    }

    func withIdentityMesh(_ body: (TestMesh) async throws -> Void) async throws {
        try await withMesh { mesh in
            try mesh.start(.vault)
            try mesh.start(.policy)
            try mesh.start(.gateway, extra: ["WARDEN_ADMIN_TOKEN": AgentAuthenticationTests.adminToken, "WARDEN_AUTH_REQUIRED": "true"])
            try await mesh.waitFor("the gateway, the vault and policy") { status in
                status.gateway.ready && status.services.filter { [.vault, .policy].contains($0.service) }.allSatisfy { $0.status == .up }
            }
            _ = try await AgentAuthenticationTests.principals(mesh, agents: 1)
            try await body(mesh)
        }
    }

    /// RFC 8693 token exchange at the gateway's `/oauth/token`.
    func exchange(_ mesh: TestMesh, _ subject: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: mesh.gatewayURL + "/oauth/token")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        let form =
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&subject_token=\(subject)"
        request.body = .bytes(ByteBuffer(string: form))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    @Test func anAgentWithAnIdentityProviderTokenGetsAWardenToken() async throws {
        try await withIdentityMesh { mesh in
            let provider = Provider(issuer: "https://idp.acme.example/realms/acme")
            let jwksFile = FileManager.default.temporaryDirectory.appendingPathComponent("warden-jwks-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: jwksFile) }
            try Data(provider.jwks.utf8).write(to: jwksFile)
            try await AgentAuthenticationTests.warden(
                [
                    "org", "trust", "--org", "acme", "--issuer", provider.issuer, "--jwks-file", jwksFile.path, "--audience", "warden",
                    "--agent-claim", "azp",
                ], mesh
            )

            let good = try await provider.token(["aud": "warden", "email": "ada@acme.example", "azp": "agent-0", "sub": "ext-123"])
            let exchanged = try await exchange(mesh, good)
            #expect(exchanged.status == 200 && exchanged.body.contains("issued_token_type"), "\(exchanged.body)")
            let access = try #require(
                (try JSONSerialization.jsonObject(with: Data(exchanged.body.utf8)) as? [String: Any])?["access_token"] as? String)
            let initialize =
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#
            #expect(try await AgentAuthenticationTests().post(mesh.gatewayURL + "/mcp", initialize, token: access).status == 200)
            // The external token itself never opens /mcp.
            #expect(try await AgentAuthenticationTests().post(mesh.gatewayURL + "/mcp", initialize, token: good).status == 401)

            // Refused, each with its reason.
            let stranger = Provider(issuer: "https://evil.example")
            let impostor = Provider(issuer: provider.issuer)
            let cases: [(String, String)] = [
                (try await stranger.token(["aud": "warden", "email": "ada@acme.example", "azp": "agent-0"]), "not trusted"),
                (try await impostor.token(["aud": "warden", "email": "ada@acme.example", "azp": "agent-0"]), "does not verify"),
                (try await provider.token(["aud": "elsewhere", "email": "ada@acme.example", "azp": "agent-0"]), "audience"),
                (try await provider.token(["aud": "warden", "email": "ada@acme.example", "azp": "agent-0"], expiresIn: -120), "expired"),
                (try await provider.token(["aud": "warden", "email": "eve@acme.example", "azp": "agent-0"]), "no enabled agent"),
                (try await provider.token(["aud": "warden", "email": "ada@acme.example"]), "lacks"),
                ("not-a-jwt", "not a JWT"),
            ]
            for (subject, reason) in cases {
                let refused = try await exchange(mesh, subject)
                #expect(
                    refused.status == 400 && refused.body.contains("invalid_grant") && refused.body.contains(reason), "\(reason): \(refused.body)")
            }
        }
    }

    @Test func aProviderPublishingItsKeysAtAURLIsFollowedThroughRotationAndItsRolesAreCarried() async throws {
        try await withIdentityMesh { mesh in
            // The provider's JWKS endpoint: a static file server on loopback.
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-idp-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let provider = Provider(issuer: "https://idp.acme.example/realms/acme")
            try Data(provider.jwks.utf8).write(to: directory.appendingPathComponent("jwks.json"))
            let port = freePort()
            let server = try ChildProcess(
                name: "jwks-server", executable: URL(fileURLWithPath: "/usr/bin/python3"),
                arguments: ["-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", directory.path]
            )
            defer { Task { await server.stop() } }
            let jwksURL = "http://127.0.0.1:\(port)/jwks.json"
            #expect(
                await eventually(timeout: .seconds(10)) { (try? await AgentAuthenticationTests().get(jwksURL).status) == 200 }, "\(server.output)")

            // Refused: a plain-http URL off loopback. The command fails, and no trust is stored: the
            // provider's tokens are still from an issuer no org trusts.
            let plainHTTP = try await runWarden(
                ["org", "trust", "--org", "acme", "--issuer", provider.issuer, "--jwks-url", "http://idp.acme.example/jwks", "--audience", "warden"],
                url: mesh.gatewayURL, adminToken: AgentAuthenticationTests.adminToken
            )
            #expect(plainHTTP.status != 0 && plainHTTP.output.contains("https"), "\(plainHTTP)")
            let claims = ["aud": "warden", "email": "ada@acme.example", "azp": "agent-0", "groups": "approver, auditor"]
            let untrusted = try await exchange(mesh, try await provider.token(claims))
            #expect(untrusted.status == 400 && untrusted.body.contains("not trusted by any org"), "\(untrusted.body)")
            try await AgentAuthenticationTests.warden(
                [
                    "org", "trust", "--org", "acme", "--issuer", provider.issuer, "--jwks-url", jwksURL, "--audience", "warden", "--roles-claim",
                    "groups",
                ], mesh
            )

            let exchanged = try await exchange(mesh, try await provider.token(claims))
            #expect(exchanged.status == 200, "\(exchanged.body)")
            let access = try #require(
                (try JSONSerialization.jsonObject(with: Data(exchanged.body.utf8)) as? [String: Any])?["access_token"] as? String)
            let payload = try #require(Base64URL.decode(String(access.split(separator: ".")[1])))
            let roles = (try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])?["roles"] as? [String]
            #expect(roles == ["approver", "auditor"], "the provider's groups are carried as roles")

            // The provider rotates its key: the gateway fetches the new set when a token needs it.
            let rotated = Provider(issuer: provider.issuer)
            try Data(rotated.jwks.utf8).write(to: directory.appendingPathComponent("jwks.json"))
            try await Task.sleep(for: .seconds(5))
            let afterRotation = try await exchange(mesh, try await rotated.token(claims))
            #expect(afterRotation.status == 200, "\(afterRotation.body)")
            let retired = try await exchange(mesh, try await provider.token(claims))
            #expect(retired.status == 400 && retired.body.contains("does not verify"), "\(retired.body)")
        }
    }
}
