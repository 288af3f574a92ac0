import AsyncHTTPClient
import Foundation
import NIOHTTP1
import PostgresNIO
import Testing
import WardenAuditChain
import WardenContracts
import WardenServiceKit

@testable import WardenAudit

/// The audit record: every MCP request through the gateway stored once, in its org's hash chain,
/// arguments redacted as the policy says; `warden audit verify` names the first record that was
/// altered, removed or reordered.
@Suite(.serialized) struct AuditTests {
    /// What PostgreSQL refuses for a message's content sets it aside at once; a missing table (a
    /// replica migrating), a deadlock, a shutdown or a lost connection leave it to be delivered again
    /// however often; any other refusal sets it aside after 20 deliveries.
    @Test func aMessageIsSetAsideForItsContentOrARepeatedRefusalOnly() {
        for state in ["22P02", "22001", "23505", "54000"] { #expect(AuditIngest.setsAside(sqlState: state, deliveries: 1), "\(state)") }
        for state in ["42P01", "40P01", "40001", "57P01", "08006", "53300"] {
            #expect(!AuditIngest.setsAside(sqlState: state, deliveries: 1), "\(state)")
            #expect(!AuditIngest.setsAside(sqlState: state, deliveries: 1_000), "\(state)")
        }
        for state in ["57014", "P0001", "XX000", "55P03"] {
            #expect(!AuditIngest.setsAside(sqlState: state, deliveries: 19), "\(state)")
            #expect(AuditIngest.setsAside(sqlState: state, deliveries: 20), "\(state)")
        }
        #expect(!AuditIngest.setsAside(sqlState: nil, deliveries: 1_000), "no answer from PostgreSQL: delivered again")
    }

    func row(_ position: Int64, _ previous: String, action: String = "mcp.tools.call") -> AuditChainRow {
        let event = AuditEvent(
            id: "e\(position)", time: Date(timeIntervalSince1970: 1_800_000_000), service: .gateway, action: action, outcome: .success, org: "acme",
            actor: "a", target: "t", detail: "d")
        let body = String(decoding: (try? EnvelopeCoding.encoder().encode(event)) ?? Data(), as: UTF8.self)
        return AuditChainRow(
            position: position, eventID: "e\(position)", action: action, body: body, previousHash: previous,
            hash: AuditChain.hash(previous: previous, position: position, body: body))
    }

    func chain(_ count: Int64) -> [AuditChainRow] {
        var rows: [AuditChainRow] = []
        var previous = AuditChain.genesis
        for position in 1...count {
            rows.append(row(position, previous))
            previous = rows.last!.hash
        }
        return rows
    }

    /// The first problem a walk finds, and where.
    func walk(_ rows: [AuditChainRow], head: (Int64, String)?) -> String? {
        var walk = AuditChainWalk()
        for row in rows { if let problem = walk.check(row) { return problem } }
        return walk.finish(headPosition: head?.0, headHash: head?.1)
    }

    @Test func aWalkNamesTheFirstRecordThatIsNotAsWritten() {
        let rows = chain(5)
        let head = (Int64(5), rows[4].hash)
        #expect(walk(rows, head: head) == nil)
        var altered = rows
        altered[2].body = altered[2].body.replacingOccurrences(of: "mcp.tools.call", with: "mcp.tools.list")
        #expect(walk(altered, head: head)?.hasPrefix("record 3 was altered") == true)
        var relabelled = rows
        relabelled[1].action = "mcp.prompts.get"
        #expect(walk(relabelled, head: head) == "record 2 was altered (its columns do not match its body)")
        // A time column moved (to hide a record from time-range queries) is named too.
        var retimed = rows
        retimed[1].time = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(walk(retimed, head: head) == nil)
        retimed[1].time = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(walk(retimed, head: head) == "record 2 was altered (its columns do not match its body)")
        #expect(walk(rows.filter { $0.position != 3 }, head: head) == "records 3–3 are missing")
        #expect(walk([rows[0], rows[2], rows[1], rows[3], rows[4]], head: head) == "records 2–2 are missing")
        #expect(walk(Array(rows.prefix(3)), head: head) == "records 4–5 are missing from the end")
        var rehashed = rows
        rehashed[3] = row(4, String(repeating: "f", count: 64))
        #expect(walk(rehashed, head: head)?.hasPrefix("record 4 does not follow record 3") == true)
        // The head rewritten to hide removed records, or removed with them.
        #expect(walk(rows, head: (3, rows[2].hash)) == "the chain's head names record 3 but records run to 5")
        #expect(walk(rows, head: nil) == "the chain's head is missing")
        #expect(walk([], head: nil) == nil)
    }

    @Test func anEventIsStoredOnceAndWhatPostgreSQLRefusesIsNotInTheColumns() async throws {
        let database = try await TestDatabase.create()
        try await withDatabaseClient(database, as: .audit) { client in
            _ = try await MigrationRunner(schema: "audit", migrations: AuditService.migrations).run(on: client, logger: TestEnvironment.logger)
            let store = AuditStore(database: client, logger: TestEnvironment.logger)
            // As the ingest makes them: the event as decoded from the bytes it stores.
            func incoming(_ event: AuditEvent) throws -> AuditStore.Incoming {
                let body = try EnvelopeCoding.encoder().encode(event)
                return AuditStore.Incoming(
                    event: try EnvelopeCoding.decoder().decode(AuditEvent.self, from: body), body: String(decoding: body, as: UTF8.self))
            }
            let event = AuditEvent(
                service: .gateway, action: "mcp.x\u{0}y", outcome: .failure, org: "acme", actor: "a", target: "t\u{0}", detail: "d")
            #expect(try await store.append([incoming(event), incoming(event)]).count == 1, "one event once, even twice in a batch")
            #expect(try await store.append([incoming(event)]).isEmpty, "and once when delivered again")
            let other = AuditEvent(service: .gateway, action: "mcp.tools.call", outcome: .success, org: "acme", actor: "a", target: "t", detail: "d")
            #expect(try await store.append([incoming(other)]).count == 1)
            let verified = try await store.verify(org: "acme", signed: { AuditSignedStatements(checkpoints: [], base: nil) }, keys: [:])
            #expect(verified.intact && verified.records == 2, "\(verified)")
        }
    }

    static let policy = """
        rules:
          - {id: all, effect: allow, tools: ["*"]}
          - {id: quiet-writes, effect: allow, tools: [write_file], obligations: {redact: [$.text]}}
          - {id: no-payments, effect: deny, tools: [pay_invoice]}

        """

    @Test func everyCallIsOnRecordOnceRedactedAndTamperingIsNamed() async throws {
        try await withMesh { mesh in
            try mesh.start(.gateway)
            try mesh.start(.audit)
            try await mesh.withAgent {
                func warden(_ arguments: [String], succeeds: Bool = true) async throws -> String {
                    let (status, output) = try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                    #expect((status == 0) == succeeds, "warden \(arguments.joined(separator: " ")): \(output)")
                    return output
                }
                let token = try #require(TestMesh.agentToken)
                let enforcement = PolicyEnforcementTests()
                let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/policy_tools_server.py").path
                // The server is given a credential: calls to it name the reference, never the value.
                let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("corp-key-\(UUID().uuidString)")
                try Data("corp-api-key-value-0123456789".utf8).write(to: keyFile)
                defer { try? FileManager.default.removeItem(at: keyFile) }
                _ = try await warden(["secret", "set", "--org", "acme", "corp/api-key", "--from-file", keyFile.path])
                _ = try await warden([
                    "server", "add", "corp", "--org", "acme", "--command", try StdioServerTests.python, "--arg", script, "--env",
                    "CORP_KEY=secret://corp/api-key",
                ])
                _ = try await warden(["policy", "apply", "--org", "acme", "-f", try enforcement.file(Self.policy)])
                let calls = [
                    ("corp__web_search", #"{"query": "one"}"#), ("corp__web_search", #"{"query": "two"}"#),
                    ("corp__write_file", #"{"path": "/tmp/a", "text": "the-private-note"}"#), ("corp__pay_invoice", #"{"invoice": "i-9"}"#),
                    ("corp__read_file", #"{"path": "/etc/hosts"}"#),
                ]
                let (report, output) = try await enforcement.run(mesh.gatewayURL, token: token, calls)
                #expect(report.calls.count == 5, "\(output)")

                // Exactly one call event per call, with who, what, the decision and the outcome.
                func records() async throws -> [AuditRecord] {
                    let json = try await warden(["audit", "query", "--org", "acme", "--action", "mcp.tools.call", "--json"])
                    return try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: Data(json.utf8)).records
                }
                let stored = await eventually(timeout: .seconds(30)) { ((try? await records()) ?? []).count >= 5 }
                #expect(stored, "the calls reach the audit record")
                try await Task.sleep(for: .milliseconds(500))
                // Published concurrently: the chain's order need not be the calls' order.
                let calls5: [AuditEvent] = try await records().map(\.event)
                #expect(calls5.count == 5, "each call once: \(calls5.map(\.target))")
                #expect(calls5.map(\.target).sorted() == calls.map(\.0).sorted())
                func about(_ tool: String) -> [AuditEvent] { calls5.filter { $0.target == tool } }
                #expect(about("corp__pay_invoice").map(\.outcome) == [.denied] && about("corp__pay_invoice").first?.call?.decision == "deny")
                #expect(calls5.filter { $0.target != "corp__pay_invoice" }.allSatisfy { $0.outcome == .success && $0.call?.decision == "allow" })
                #expect(about("corp__pay_invoice").first?.call?.arguments == nil, "a call no rule allowed keeps no arguments")
                #expect(calls5.allSatisfy { $0.call?.agent != nil && $0.call?.server != nil || $0.call?.decision == "deny" })
                let write = try #require(calls5.first { $0.target == "corp__write_file" }?.call)
                #expect(write.arguments?.contains("[redacted]") == true && write.arguments?.contains("/tmp/a") == true, "\(write.arguments ?? "")")
                let everything = try await warden(["audit", "query", "--org", "acme", "--limit", "1000", "--json"])
                #expect(!everything.contains("the-private-note"), "a redacted argument is nowhere in the record")
                let allowed = calls5.filter { $0.call?.decision == "allow" }
                #expect(
                    allowed.allSatisfy { $0.call?.credentials?.contains { $0.contains("corp/api-key") } == true },
                    "\(allowed.map { $0.call?.credentials ?? [] })")
                #expect(!everything.contains("corp-api-key-value"), "no credential value is in the record")
                // Listings are on record too.
                #expect(everything.contains("mcp.tools.list"))
                // And admin changes: who, what, how it went (never a request body).
                let changes = try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: Data(everything.utf8)).records.map(\.event)
                    .filter { $0.action.hasPrefix("admin.") }
                #expect(
                    changes.contains {
                        $0.action == "admin.post" && $0.actor == "platform-admin" && $0.target == "POST /admin/v1/servers" && $0.outcome == .success
                    },
                    "\(changes.map(\.target))")
                #expect(changes.contains { $0.target.hasPrefix("POST /admin/v1/orgs/acme/agents") && $0.detail.hasPrefix("HTTP 2") })
                #expect(changes.contains { $0.target.hasPrefix("POST /admin/v1/policies") }, "a policy applied to acme is in acme's record")
                #expect(!everything.contains("allow-all"), "no request body is recorded")

                // An agent signing in with its API key is on record (the key's id, never the key).
                let agentID = try #require(calls5.first?.call?.agent)
                let created = try JSONDecoder().decode(
                    CreatedAPIKey.self, from: Data(try await warden(["apikey", "create", "--org", "acme", "--agent", agentID, "--json"]).utf8))
                var exchange = HTTPClientRequest(url: mesh.gatewayURL + "/oauth/token")
                exchange.method = .POST
                exchange.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                exchange.body = .bytes(ByteBuffer(string: "grant_type=client_credentials&client_id=\(created.id)&client_secret=\(created.key)"))
                #expect(try await HTTPClient.shared.execute(exchange, timeout: .seconds(10)).status == .ok)
                let signedIn = await eventually(timeout: .seconds(20)) {
                    let json = (try? await warden(["audit", "query", "--org", "acme", "--action", "token.issued", "--json"])) ?? ""
                    return json.contains("api-key:\(created.id)") && json.contains("agent:\(agentID)")
                }
                #expect(signedIn, "the sign-in is on record")
                let tokens = try await warden(["audit", "query", "--org", "acme", "--action", "token.issued", "--json"])
                #expect(!tokens.contains(created.key) && !tokens.contains(String(created.key.suffix(20))), "the key itself is nowhere")

                // Intact, then a record changed in PostgreSQL is named.
                let intact = try await warden(["audit", "verify", "--org", "acme"])
                #expect(intact.contains("is intact"), "\(intact)")
                let second = try #require(
                    try await records().first { $0.event.call?.arguments?.contains("two") == true }?.position)
                try await withDatabaseClient(mesh.database, as: .audit) { client in
                    try await client.query(
                        "UPDATE audit.records SET body = replace(body, 'two', 'TWO') WHERE chain = 'acme' AND position = \(second)",
                        logger: TestEnvironment.logger)
                }
                let broken = try await warden(["audit", "verify", "--org", "acme"], succeeds: false)
                #expect(broken.contains("NOT intact at record \(second)") && broken.contains("was altered"), "\(broken)")
            }
        }
    }
}
