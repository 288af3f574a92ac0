import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WardenContracts
import WardenMCP

#if canImport(Glibc)
    import Glibc
#endif

/// Policies enforced by the gateway, through the real processes and the official Python client:
/// listings show only what an agent may use, calls are decided on their arguments and address, a
/// hidden tool is denied like a missing one, a change reaches a second replica at once (with
/// `list_changed` on the session's stream), and with the policy service gone calls fail closed.
@Suite(.serialized) struct PolicyEnforcementTests {
    /// Berlin office hours as the example says them, moved to the hours around now so that real
    /// calls fall inside one window (open: the hour before to two hours after) and outside another
    /// (closed: six to eight hours from now).
    static let (openFrom, openTo, closedFrom, closedTo): (String, String, String, String) = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/Berlin")!
        let hour = calendar.component(.hour, from: Date())
        func at(_ offset: Int) -> String { String(format: "%02d:00", (hour + offset + 24) % 24) }
        return (at(-1), at(2), at(6), at(8))
    }()

    static let policy = """
        rules:
          - id: researchers-read
            effect: allow
            agents: {classes: [researcher]}
            tools: [web_search, read_file]
          - id: researchers-never-write
            effect: deny
            agents: {classes: [researcher]}
            tools: ["*write*", "*payment*"]
          - id: github-projects
            effect: allow
            agents: {classes: [default]}
            tools: ["github_*"]
            when:
              - arg: $.repository
                glob: "acme/project-*"
          - id: db-from-here
            effect: allow
            agents: {classes: [default]}
            tools: [db_query]
            when:
              - clientAddress: any
                in: [127.0.0.0/8]
              - arg: $.sql
                regex: "^(SELECT|select) "
              - time: {days: [mon, tue, wed, thu, fri, sat, sun], from: "\(openFrom)", to: "\(openTo)", zone: Europe/Berlin}
          - id: files-after-hours
            effect: allow
            agents: {classes: [default]}
            tools: [write_file]
            when:
              - time: {days: [mon, tue, wed, thu, fri, sat, sun], from: "\(closedFrom)", to: "\(closedTo)", zone: Europe/Berlin}
          - id: crm-own-customer
            effect: allow
            agents: {classes: [default]}
            tools: [crm_update_record]
            when:
              - arg: $.customer_id
                equals: {claim: customer_id}
          - id: payouts
            effect: approve
            agents: {classes: [default]}
            tools: [pay_invoice]
            approval: {roles: [approver]}

        """

    struct Report {
        var tools: [String]
        var calls: [[String: Any]]

        func call(_ tool: String) -> [String: Any] { calls.first { $0["tool"] as? String == tool } ?? [:] }
    }

    func run(_ url: String, token: String, _ calls: [(String, String)]) async throws -> (Report, String) {
        let list = "[" + calls.map { #"["\#($0.0)", \#($0.1)]"# }.joined(separator: ",") + "]"
        let run = try await TestMesh.$agentToken.withValue(token) {
            try await runPythonCheck("mcp_policy_check.py", [url + "/mcp", list], timeout: .seconds(90))
        }
        let line = run.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let json = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
        return (Report(tools: json["tools"] as? [String] ?? [], calls: json["calls"] as? [[String: Any]] ?? []), run.output)
    }

    func file(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).yaml")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test func callsAndListingsFollowThePolicyOnEveryReplicaAndFailClosed() async throws {
        try await withMesh { mesh in
            try mesh.start(.gateway)
            let secondPort = freePort()
            try mesh.start(.gateway, name: "gateway-2", extra: ["WARDEN_HTTP_PORT": "\(secondPort)", "WARDEN_POLICY_TIMEOUT_MS": "1500"])
            let secondURL = "http://127.0.0.1:\(secondPort)"
            // Two policy replicas: what one changes, the other decides with at once.
            try mesh.start(.policy)
            try mesh.start(.policy, name: "policy-2")
            try await mesh.withAgent {
                func warden(_ arguments: [String]) async throws -> String {
                    let (status, output) = try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                    #expect(status == 0, "warden \(arguments.joined(separator: " ")): \(output)")
                    return output
                }
                let assistantToken = try #require(TestMesh.agentToken)
                let agents = try await warden(["agent", "list", "--org", "acme"])
                let assistantAgent = try #require(
                    agents.split(separator: "\n").first { $0.contains("test-agent") }?.split(separator: " ").first.map(String.init))
                let users = try await warden(["user", "list", "--org", "acme"])
                let owner = try #require(
                    users.split(separator: "\n").first { $0.contains("ada@acme.example") }?.split(separator: " ").first.map(String.init))
                // The acting user's customer_id (an attribute an admin set) is the claim the CRM rule reads.
                let attributes = try await warden(["user", "set-attributes", "--org", "acme", owner, "--attribute", "customer_id=c-42"])
                #expect(attributes.contains("customer_id=c-42"), "\(attributes)")
                let researcher = try await warden(["agent", "add", "--org", "acme", "--name", "r1", "--owner", owner, "--class", "researcher"])
                let researcherToken = try await warden(["token", "issue", "--org", "acme", "--agent", researcher])
                let python = try StdioServerTests.python
                let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/policy_tools_server.py").path
                _ = try await warden(["server", "add", "corp", "--org", "acme", "--command", python, "--arg", script])
                _ = try await warden(["policy", "apply", "--org", "acme", "-f", try file(Self.policy)])
                // The server runs and has listed its tools on both replicas before anything is asked.
                for url in [mesh.gatewayURL, secondURL] {
                    let ready = await eventually(timeout: .seconds(60)) {
                        let body = (try? await CredentialInjectionTests().admin(mesh, .GET, "/admin/v1/servers", url: url))?.body ?? ""
                        return body.contains("\"ready\"") && body.contains("\"tools\":7")
                    }
                    #expect(ready, "the server is ready on \(url)")
                }

                // The researcher sees and uses only what it may; a hidden tool and a missing one
                // are denied alike.
                let (asResearcher, researcherOutput) = try await run(
                    secondURL, token: researcherToken,
                    [("corp__web_search", #"{"query": "mcp"}"#), ("corp__write_file", #"{"path": "/tmp/x"}"#), ("corp__no_such_tool", "{}")])
                #expect(asResearcher.tools == ["corp__read_file", "corp__web_search"], "\(researcherOutput)")
                #expect(asResearcher.call("corp__web_search")["ok"] as? Bool == true, "\(researcherOutput)")
                let denied = asResearcher.call("corp__write_file"), missing = asResearcher.call("corp__no_such_tool")
                #expect(denied["code"] as? Int == -32040 && missing["code"] as? Int == -32040, "\(researcherOutput)")
                #expect((denied["message"] as? String)?.contains("Denied by policy") == true, "\(researcherOutput)")

                // Its user narrows it per client application: through this API key it reaches
                // read_file only; with its token, nothing changes.
                let created = try await warden(["apikey", "create", "--org", "acme", "--agent", researcher, "--json"])
                let keyFields = try #require(try JSONSerialization.jsonObject(with: Data(created.utf8)) as? [String: Any])
                let (keyID, secret) = (try #require(keyFields["id"] as? String), try #require(keyFields["key"] as? String))
                // The client exchanges its key for a token (client credentials): the token names the key as its client.
                var exchange = HTTPClientRequest(url: secondURL + "/oauth/token")
                exchange.method = .POST
                exchange.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                exchange.body = .bytes(ByteBuffer(string: "grant_type=client_credentials&client_id=\(keyID)&client_secret=\(secret)"))
                let exchanged = try await HTTPClient.shared.execute(exchange, timeout: .seconds(10))
                let tokenBody = try await exchanged.body.collect(upTo: 1 << 16)
                let key = try #require(
                    (try JSONSerialization.jsonObject(with: Data(tokenBody.readableBytesView)) as? [String: Any])?["access_token"] as? String)
                let perClient = "rules:\n  - {id: key-reads, layer: user, effect: allow, agents: {clients: [\(keyID)]}, tools: [read_file]}\n"
                _ = try await warden(["policy", "apply", "--org", "acme", "--user", owner, "-f", try file(perClient)])
                let (viaKey, viaKeyOutput) = try await run(
                    secondURL, token: key, [("corp__web_search", #"{"query": "mcp"}"#), ("corp__read_file", #"{"path": "/a"}"#)])
                #expect(viaKey.tools == ["corp__read_file"], "\(viaKeyOutput)")
                #expect(
                    viaKey.calls.map { ($0["ok"] as? Bool == true) ? "ok" : "\($0["code"] as? Int ?? 0)" } == ["-32040", "ok"], "\(viaKeyOutput)")
                let (viaToken, viaTokenOutput) = try await run(secondURL, token: researcherToken, [("corp__web_search", #"{"query": "mcp"}"#)])
                #expect(
                    viaToken.tools == ["corp__read_file", "corp__web_search"] && viaToken.calls.first?["ok"] as? Bool == true, "\(viaTokenOutput)")

                // Another agent: GitHub on project repositories only, the database from this
                // address for SELECTs only, payments need approval (and with no approvals service
                // in this mesh, they fail closed: -32046).
                let (asAssistant, assistantOutput) = try await run(
                    mesh.gatewayURL, token: assistantToken,
                    [
                        ("corp__github_create_issue", #"{"repository": "acme/project-x", "title": "t"}"#),
                        ("corp__github_create_issue", #"{"repository": "acme/secrets", "title": "t"}"#),
                        ("corp__db_query", #"{"sql": "SELECT 1"}"#), ("corp__db_query", #"{"sql": "DROP TABLE users"}"#),
                        ("corp__pay_invoice", #"{"invoice": "i-1"}"#), ("corp__web_search", "{}"),
                        ("corp__crm_update_record", #"{"customer_id": "c-42", "note": "n"}"#),
                        ("corp__crm_update_record", #"{"customer_id": "c-7", "note": "n"}"#),
                        ("corp__write_file", #"{"path": "/tmp/x"}"#),
                    ])
                #expect(
                    asAssistant.tools == [
                        "corp__crm_update_record", "corp__db_query", "corp__github_create_issue", "corp__pay_invoice", "corp__write_file",
                    ], "\(assistantOutput)")
                let outcomes = asAssistant.calls.map { ($0["ok"] as? Bool == true) ? "ok" : "\($0["code"] as? Int ?? 0)" }
                #expect(outcomes == ["ok", "-32040", "ok", "-32040", "-32046", "-32040", "ok", "-32040", "-32040"], "\(assistantOutput)")

                // The user's customer changes: every policy replica decides with the new one at once
                // (each remembers what it read until told of a change).
                _ = try await warden(["user", "set-attributes", "--org", "acme", owner, "--attribute", "customer_id=c-7"])
                let crm = [String](repeating: "corp__crm_update_record", count: 4)
                let (moved, movedOutput) = try await run(
                    mesh.gatewayURL, token: assistantToken,
                    crm.map { ($0, #"{"customer_id": "c-42"}"#) } + crm.map { ($0, #"{"customer_id": "c-7"}"#) })
                #expect(
                    moved.calls.map { ($0["ok"] as? Bool == true) ? "ok" : "\($0["code"] as? Int ?? 0)" }
                        == Array(repeating: "-32040", count: 4) + Array(repeating: "ok", count: 4), "\(movedOutput)")
                #expect((asAssistant.calls.first?["text"] as? String)?.contains("ran github_create_issue") == true)

                // What each agent may use, and what a change would do, before it is made.
                let effective = try await warden(["policy", "effective", "--org", "acme", "--agent", researcher])
                #expect(
                    effective.contains("corp__read_file") && effective.contains("corp__web_search") && !effective.contains("corp__write_file"),
                    "\(effective)")
                let conditional = try await warden(["policy", "effective", "--org", "acme", "--agent", assistantAgent])
                #expect(
                    conditional.contains("conditional") && conditional.contains("acme/project-*") && conditional.contains("approve"), "\(conditional)"
                )
                let preview = Self.policy.replacingOccurrences(of: "tools: [web_search, read_file]", with: "tools: [read_file]")
                let dryRun = try await warden(["policy", "apply", "--org", "acme", "-f", try file(preview), "--dry-run"])
                #expect(dryRun.contains("agent \(researcher) (r1): loses corp__web_search"), "\(dryRun)")

                // A change applied through one replica takes effect on the other at once (which had
                // the researcher's allowed search cached), and the session open there hears
                // list_changed on its stream.
                let session = try #require(
                    try await TestMesh.$agentToken.withValue(researcherToken) {
                        try await EventStreamTests.post(secondURL + "/mcp", EventStreamTests.initialize).session
                    })
                var standing = HTTPClientRequest(url: secondURL + "/mcp")
                standing.headers.add(name: "Accept", value: "text/event-stream")
                standing.headers.add(name: "Mcp-Session-Id", value: session)
                standing.headers.add(name: "MCP-Protocol-Version", value: "2025-06-18")
                standing.headers.add(name: "Authorization", value: "Bearer \(researcherToken)")
                let stream = try await EventStreamTests.open(standing)
                async let heard = EventStreamTests.events(of: stream, within: .seconds(5))
                try await Task.sleep(for: .milliseconds(300))
                let narrower = Self.policy.replacingOccurrences(of: "tools: [web_search, read_file]", with: "tools: [read_file]")
                let applied = try await warden(["policy", "apply", "--org", "acme", "-f", try file(narrower)])
                #expect(applied.contains("changed: researchers-read"), "\(applied)")
                let call = #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"corp__web_search","arguments":{}}}"#
                let after = try await TestMesh.$agentToken.withValue(researcherToken) {
                    try await EventStreamTests.post(secondURL + "/mcp", call, session: session)
                }
                #expect(after.body.contains("-32040"), "the next call on the second replica is denied: \(after.body)")
                #expect(try await heard.contains { $0.data.contains("notifications/tools/list_changed") }, "the session was told")

                // Without the policy service nothing runs, and the answer says why within the
                // deadline (1.5 s here); it recovers.
                let assistantSession = try #require(
                    try await TestMesh.$agentToken.withValue(assistantToken) {
                        try await EventStreamTests.post(secondURL + "/mcp", EventStreamTests.initialize).session
                    })
                for name in ["policy", "policy-2"] { await mesh.processes[name]?.stop(signal: SIGKILL) }
                let project =
                    #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"corp__github_create_issue","arguments":{"repository":"acme/project-y"}}}"#
                let started = ContinuousClock.now
                let down = try await TestMesh.$agentToken.withValue(assistantToken) {
                    try await EventStreamTests.post(secondURL + "/mcp", project, session: assistantSession)
                }
                #expect(down.body.contains("-32041") && down.body.contains("Policy is unavailable"), "\(down.body)")
                #expect(!down.body.contains("ran github_create_issue"), "nothing ran")
                #expect(ContinuousClock.now - started < .seconds(10), "refused within the deadline, not hung")
                try mesh.start(.policy)
                let back = await eventually(timeout: .seconds(60)) {
                    let (report, _) =
                        (try? await run(secondURL, token: assistantToken, [("corp__github_create_issue", #"{"repository": "acme/project-y"}"#)]))
                        ?? (Report(tools: [], calls: []), "")
                    return report.calls.first?["ok"] as? Bool == true
                }
                #expect(back, "calls are decided again once the policy service is back")
            }
        }
    }
}
