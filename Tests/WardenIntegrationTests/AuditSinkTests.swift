import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WardenContracts
import WardenGateway
import WardenNATS
import WardenServiceKit

/// Webhook sinks for SIEMs and an org's choice to continue unrecorded, through a real mesh: two
/// gateway replicas, the audit service, the vault, PostgreSQL and NATS, and an HTTP receiver.
@Suite(.serialized) struct AuditSinkTests {
    /// What the receiver logged: one entry per POST.
    struct Delivery {
        var path: String
        var status: Int
        var headers: [String: String]
        var body: String
        var records: [AuditChainedRecord]
    }

    static func deliveries(_ log: URL) -> [Delivery] {
        ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            guard let entry = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let body = entry["body"] as? String else {
                return nil
            }
            let delivery = try? EnvelopeCoding.decoder().decode(AuditSinkDelivery.self, from: Data(body.utf8))
            return Delivery(
                path: entry["path"] as? String ?? "", status: entry["status"] as? Int ?? 0, headers: entry["headers"] as? [String: String] ?? [:],
                body: body, records: delivery?.records ?? [])
        }
    }

    @Test func sinksGetEveryStoredRecordInChainOrderSignedAndRetriedOnceEachAcrossTwoGatewayReplicas() async throws {
        try await withMesh { mesh in
            let local = ["WARDEN_APPROVAL_LOCAL_ENDPOINTS": "true"]
            try mesh.start(.gateway, extra: local)
            try mesh.start(.gateway, name: "gateway-2", extra: local.merging(["WARDEN_HTTP_PORT": "\(freePort())"]) { $1 })
            try mesh.start(.audit)
            try await mesh.withAgent {
                try await mesh.waitForAudit()
                func warden(_ arguments: [String]) async throws -> (status: Int32?, output: String) {
                    try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                }
                func head() async throws -> Int64 {
                    let (_, json) = try await warden(["audit", "query", "--org", "acme", "--limit", "1", "--json"])
                    return try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: Data(json.utf8)).records.first?.position ?? 0
                }
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sinks-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: directory) }
                let log = directory.appendingPathComponent("log")
                let receiver = try ChildProcess(
                    name: "sink-receiver", executable: URL(fileURLWithPath: try StdioServerTests.python),
                    arguments: [
                        try TestEnvironment.repository.appendingPathComponent("Tests/Python/notice_receiver.py").path,
                        directory.appendingPathComponent("port").path, log.path,
                    ])
                #expect(
                    await eventually(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: directory.appendingPathComponent("port").path) })
                let base = "http://127.0.0.1:" + (try String(contentsOf: directory.appendingPathComponent("port"), encoding: .utf8))

                let bus = try await mesh.nats.connect(as: .gateway)
                defer { bus.close() }
                #expect(await publishAsGateway(callEvents(org: "acme", 0..<3), on: bus))
                let stored = try await eventually(timeout: .seconds(30)) {
                    try await warden(["audit", "query", "--org", "acme", "--json"]).output.contains("corp__tool2")
                }
                #expect(stored)

                // Bad settings are refused, saying why (and the refusal is on record).
                let file = directory.appendingPathComponent("sinks.json")
                try Data(#"{"sinks": [{"id": "siem", "url": "\#(base)/hook", "secret": "short"}]}"#.utf8).write(to: file)
                let refused = try await warden(["audit", "sinks", "set", "--org", "acme", "-f", file.path])
                #expect(refused.status != 0 && refused.output.contains("16 to 1024 characters"), "\(refused.output)")
                let refusalStored = try await eventually(timeout: .seconds(30)) {
                    try await warden(["audit", "query", "--org", "acme", "--action", "admin.put", "--json"]).output.contains("audit-sinks")
                }
                #expect(refusalStored)
                let before = try await head()

                // "siem" (failing twice first) starts after the newest record; "archive" at the chain's start.
                let secret = "sink-secret-0123456789abcdef"
                let sinks = AuditSinks(sinks: [
                    AuditSink(id: "siem", url: base + "/hook", secret: secret),
                    AuditSink(id: "archive", url: base + "/archive", secret: secret + "-2", from: .start),
                ])
                try EnvelopeCoding.encoder().encode(sinks).write(to: file)
                let set = try await warden(["audit", "sinks", "set", "--org", "acme", "-f", file.path])
                #expect(set.status == 0, "\(set.output)")
                #expect(!set.output.contains(secret) && !set.output.contains("/hook") && set.output.contains("siem"), "\(set.output)")
                #expect(await publishAsGateway(callEvents(org: "acme", 3..<250), on: bus))

                // Every record reaches both sinks, in order; "siem" from the first after `before`.
                func covered(_ path: String, from first: Int64, through last: Int64) -> Bool {
                    let positions = Self.deliveries(log).filter { $0.path == path && $0.status == 200 }.flatMap { $0.records.map(\.position) }
                    return positions == Array(first...last)
                }
                var last: Int64 = 0
                let delivered = try await eventually(timeout: .seconds(60)) {
                    last = try await head()
                    return last >= before + 247 && covered("/hook", from: before + 1, through: last) && covered("/archive", from: 1, through: last)
                }
                let all = Self.deliveries(log)
                #expect(
                    delivered,
                    "head \(last), before \(before): \(all.map { "\($0.path) \($0.status) \($0.records.first?.position ?? -1)…\($0.records.last?.position ?? -1)" })"
                )

                // The first two posts to "siem" failed and the same records came again; each is signed.
                let hook = all.filter { $0.path == "/hook" }
                #expect(hook.prefix(3).map(\.status) == [500, 500, 200], "\(hook.map(\.status))")
                #expect(Set(hook.prefix(3).map { $0.records.first?.position }) == [before + 1], "retries start where the sink stopped")
                for delivery in all {
                    let key = delivery.path == "/hook" ? secret : secret + "-2"
                    let timestamp = delivery.headers["Warden-Timestamp"] ?? ""
                    #expect(
                        delivery.headers["Warden-Signature"] == "v1="
                            + WebhookSignature.v1(secret: key, timestamp: timestamp, body: Data(delivery.body.utf8)))
                    #expect(delivery.headers["Warden-Event"] == "audit.records")
                    #expect(delivery.headers["Warden-Delivery"]?.hasPrefix("acme/") == true)
                }
                // Chained as stored: each record's previous hash is the hash of the one before it.
                let archived = all.filter { $0.path == "/archive" && $0.status == 200 }.flatMap(\.records)
                #expect(zip(archived, archived.dropFirst()).allSatisfy { $1.previousHash == $0.hash })
                #expect(
                    Set(archived.compactMap { try? EnvelopeCoding.decoder().decode(AuditEvent.self, from: Data($0.body.utf8)).target }).isSuperset(
                        of: (0..<250).map { "corp__tool\($0)" }))

                // How far each got, and a removed sink is gone.
                let shown = try await eventually(timeout: .seconds(15)) {
                    let (_, output) = try await warden(["audit", "sinks", "show", "--org", "acme", "--json"])
                    let view = try EnvelopeCoding.decoder().decode(AuditSinksView.self, from: Data(output.utf8))
                    return view.status.count == 2 && view.status.allSatisfy { $0.deliveredThrough == last && $0.attempts == 0 }
                }
                #expect(shown)
                let table = try await warden(["audit", "sinks", "show", "--org", "acme"]).output
                #expect(table.contains("siem") && table.contains("record \(last)") && !table.contains(secret), "\(table)")
                // "siem" removed; "probe" names this machine in a form the setting's check does not
                // recognise (127.1): the delivery resolves it and refuses to connect.
                let probe = AuditSink(
                    id: "probe", url: base.replacingOccurrences(of: "http://127.0.0.1", with: "https://127.1") + "/probe", secret: secret,
                    from: .start)
                try EnvelopeCoding.encoder().encode(AuditSinks(sinks: [sinks.sinks[1], probe])).write(to: file)
                let replaced = try await warden(["audit", "sinks", "set", "--org", "acme", "-f", file.path])
                #expect(replaced.status == 0, "\(replaced.output)")
                var view = AuditSinksView(sinks: [], status: [])
                let refusedProbe = try await eventually(timeout: .seconds(20)) {
                    let (_, output) = try await warden(["audit", "sinks", "show", "--org", "acme", "--json"])
                    view = try EnvelopeCoding.decoder().decode(AuditSinksView.self, from: Data(output.utf8))
                    return view.status.first { $0.id == "probe" }?.lastError?.contains("public addresses") == true
                }
                #expect(refusedProbe, "\(view)")
                #expect(view.sinks.map(\.id) == ["archive", "probe"] && view.status.map(\.id) == ["archive", "probe"], "siem is gone: \(view)")
                await receiver.stop()
            }
        }
    }

    @Test func anOrgThatChoseToContinueRunsUnrecordedWhileAuditIsDownAndTheGapIsRecorded() async throws {
        try await withMesh { mesh in
            try mesh.start(.gateway, extra: ["WARDEN_AUDIT_SPOOL_EVENTS": "2"])
            try mesh.start(.audit)
            try await mesh.withAgent {
                func warden(_ arguments: [String]) async throws -> String {
                    let (status, output) = try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                    #expect(status == 0, "warden \(arguments.joined(separator: " ")): \(output)")
                    return output
                }
                let token = try #require(TestMesh.agentToken)
                let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/policy_tools_server.py").path
                _ = try await warden(["server", "add", "corp", "--org", "acme", "--command", try StdioServerTests.python, "--arg", script])
                #expect(try await warden(["audit", "continuity", "--org", "acme"]).contains("refused"), "the default")
                // An org admin chooses for its own org, and for no other.
                let admin = try await warden(["user", "add", "--org", "acme", "--email", "grace@acme.example", "--role", "admin"])
                let orgAdmin = try await warden(["user", "admin-token", "--org", "acme", admin.trimmingCharacters(in: .whitespacesAndNewlines)])
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                let elsewhere = try await runWarden(
                    ["audit", "continuity", "--org", "globex", "--when-unavailable", "continue"], url: mesh.gatewayURL, adminToken: orgAdmin)
                #expect(elsewhere.status != 0 && elsewhere.output.contains("no org 'globex'"), "\(elsewhere.output)")
                let (chosenStatus, chosen) = try await runWarden(
                    ["audit", "continuity", "--org", "acme", "--when-unavailable", "continue"], url: mesh.gatewayURL, adminToken: orgAdmin)
                #expect(chosenStatus == 0 && chosen.contains("run unrecorded") && chosen.contains("user:"), "\(chosen)")

                // The stream is gone and the spool (2) fills: acme's calls still run.
                let bus = try await mesh.nats.connect(as: .gateway)
                defer { bus.close() }
                try await bus.deleteStream(AuditStream.name)
                let enforcement = PolicyEnforcementTests()
                // One call fills the spool (its listing and the call); once the gateway has found the
                // stream gone (its first publish failed), acme's requests run unrecorded.
                _ = try await enforcement.run(mesh.gatewayURL, token: token, [("corp__web_search", #"{"query": "first"}"#)])
                let noticed = await eventually(timeout: .seconds(15)) {
                    mesh.processes["gateway"]?.output.contains("audit events cannot be written to the audit stream") == true
                }
                #expect(noticed)
                let calls = (0..<4).map { ("corp__web_search", #"{"query": "unrecorded-\#($0)"}"#) }
                let (during, output) = try await enforcement.run(mesh.gatewayURL, token: token, calls)
                #expect(during.calls.count == 4 && during.calls.allSatisfy { $0["ok"] as? Bool == true }, "\(output)")
                #expect(mesh.processes["gateway"]?.output.contains("its requests run unrecorded") == true)
                // The gateway stays ready (acme's requests must reach it) and says who is refused.
                let ready = await eventually(timeout: .seconds(15)) {
                    guard
                        let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: mesh.gatewayURL + "/readyz"), timeout: .seconds(5))
                    else { return false }
                    let body = String(buffer: (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer())
                    return response.status == .ok && body.contains("except for orgs that chose to continue unrecorded")
                }
                #expect(ready, "/readyz: ready, saying who is refused")
                // Admin changes are still refused: nothing about audit itself changes unrecorded.
                let (status, refused) = try await runWarden(
                    ["audit", "continuity", "--org", "acme", "--when-unavailable", "refuse"], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                #expect(status != 0 && refused.contains("audit is unavailable"), "\(refused)")

                // The stream returns: the gap is on acme's record, saying how many ran unrecorded.
                try await bus.ensureStream(AuditPublisher.streamSpec)
                try await bus.ensureConsumer(AuditPublisher.consumerSpec)
                var gap: AuditRecord?
                let recorded = try await eventually(timeout: .seconds(45)) {
                    let json = try await warden(["audit", "query", "--org", "acme", "--action", "audit.unrecorded", "--json"])
                    gap = try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: Data(json.utf8)).records.first
                    return gap != nil
                }
                #expect(recorded, "the gap is on record")
                let detail = gap?.event.detail ?? ""
                let count = Int(detail.prefix { $0.isNumber }) ?? 0
                #expect(count >= 2 && detail.contains("ran unrecorded from"), "\(detail)")
                // Calls that ran unrecorded are not on record; what was spooled is.
                let json = try await warden(["audit", "query", "--org", "acme", "--action", "mcp.tools.call", "--limit", "1000", "--json"])
                let onRecord = try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: Data(json.utf8)).records
                let recordedCalls = onRecord.filter { $0.event.call?.arguments?.contains("unrecorded-") == true }.count
                #expect(recordedCalls < 4, "some calls ran unrecorded: \(recordedCalls) recorded")
                #expect(try await warden(["audit", "verify", "--org", "acme"]).contains("is intact"))
                // Back to refusing.
                #expect(try await warden(["audit", "continuity", "--org", "acme", "--when-unavailable", "refuse"]).contains("refused"))
            }
        }
    }
}
