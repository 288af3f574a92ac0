import AsyncHTTPClient
import Foundation
import NIOHTTP1
import PostgresNIO
import Testing
import WardenContracts
import WardenGateway
import WardenNATS
import WardenServiceKit

/// Nothing lost, nothing stored twice, nothing unaudited: audit replicas killed and NATS restarted
/// under load; a gateway whose audit stream is gone refuses requests once its spool is full and
/// resumes, with every spooled event on record, when the stream returns.
@Suite(.serialized) struct AuditDeliveryTests {
    /// Stored records of a chain: how many, how many distinct events, and whether it verifies.
    func stored(_ mesh: TestMesh, chain: String) async throws -> (records: Int, events: Int) {
        try await withDatabaseClient(mesh.database, as: .audit) { client in
            for try await counts in try await client.query(
                "SELECT count(*)::int, count(DISTINCT event_id)::int FROM audit.records WHERE chain = \(chain)", logger: TestEnvironment.logger
            ).decode((Int, Int).self) {
                return counts
            }
            return (0, 0)
        }
    }

    /// For a failed delivery test: each batch with an event not stored, its publish ack, whether the
    /// stream still holds it, the durable consumer's state and what was set aside.
    func missingBatches(_ mesh: TestMesh, events: [AuditEvent], batchSize: Int, acks: [JetStreamPublishAck?], bus: NATSConnection) async throws
        -> String
    {
        let (storedIDs, quarantined) = try await withDatabaseClient(mesh.database, as: .audit) { client in
            var storedIDs = Set<String>()
            var quarantined: [String] = []
            for try await id in try await client.query("SELECT event_id FROM audit.records", logger: TestEnvironment.logger).decode(String.self) {
                storedIDs.insert(id)
            }
            for try await (sequence, reason) in try await client.query(
                "SELECT stream_sequence, reason FROM audit.quarantine", logger: TestEnvironment.logger
            ).decode((Int64, String).self) {
                quarantined.append("\(sequence): \(reason)")
            }
            return (storedIDs, quarantined)
        }
        var lines: [String] = ["set aside: \(quarantined)"]
        let missing = Set(events.indices.filter { !storedIDs.contains(events[$0].id) }.map { $0 / batchSize })
        for index in missing.sorted() {
            let notStored = events[index * batchSize..<min((index + 1) * batchSize, events.count)].filter { !storedIDs.contains($0.id) }.count
            var line = "batch \(index) (\(notStored) events not stored)"
            if let ack = acks[index] {
                line += " ack seq \(ack.sequence) duplicate \(ack.duplicate)"
                let reply = try? await bus.request(
                    "$JS.API.STREAM.MSG.GET.\(AuditStream.name)", payload: Data(#"{"seq": \#(ack.sequence)}"#.utf8), headers: [:],
                    timeout: .seconds(5))
                line += "; stream: \(reply.map { String(decoding: $0.payload.prefix(160), as: UTF8.self) } ?? "no reply")"
            }
            lines.append(line)
        }
        let consumer = try? await bus.request(
            "$JS.API.CONSUMER.INFO.\(AuditStream.name).\(AuditPublisher.consumerSpec.durableName)", payload: Data(), headers: [:],
            timeout: .seconds(5))
        lines.append("consumer: \(consumer.map { String(decoding: $0.payload, as: UTF8.self) } ?? "no reply")")
        let stream = try? await bus.request("$JS.API.STREAM.INFO.\(AuditStream.name)", payload: Data(), headers: [:], timeout: .seconds(5))
        lines.append("stream: \(stream.map { String(decoding: $0.payload, as: UTF8.self) } ?? "no reply")")
        return lines.joined(separator: "\n")
    }

    @Test func twoReplicasOneKilledAndNATSRestartedUnderLoadKeepOneChainPerOrgWithEveryEventOnce() async throws {
        try await withMesh { mesh in
            try mesh.start(.gateway)
            try mesh.start(.vault)
            try mesh.start(.audit, name: "audit-1")
            try mesh.start(.audit, name: "audit-2")
            // Both replicas take events (each once its schema is ready), so that the kill below falls
            // on one at work.
            for name in ["audit-1", "audit-2"] {
                let ready = await eventually(timeout: .seconds(60)) { mesh.processes[name]?.output.contains("schema ready") == true }
                #expect(ready, "\(name) is ready: \(mesh.processes[name]?.output.suffix(2_000) ?? "")")
            }
            let orgs = ["north", "south", "east"]
            let total = 3_000
            let events = (0..<total).map {
                AuditEvent(
                    service: .gateway, action: "mcp.tools.call", outcome: .success, org: orgs[$0 % orgs.count], actor: "agent:a\($0 % 7)",
                    target: "corp__tool\($0 % 11)", detail: "success")
            }
            // Smaller messages than the gateway's, so that the load spans the kill and the restart.
            let batches = stride(from: 0, to: total, by: 16).map {
                CallAuditor.batches(of: Array(events[$0..<min($0 + 16, total)]), logger: TestEnvironment.logger)[0]
            }
            var bus = try await mesh.nats.connect(as: .gateway)
            defer { bus.close() }
            var acks: [JetStreamPublishAck?] = []
            for (index, batch) in batches.enumerated() {
                if index == batches.count / 3 {
                    // One replica dies mid-batch, without a chance to acknowledge what it holds.
                    await mesh.processes["audit-1"]?.stop(signal: SIGKILL)
                }
                if index == batches.count / 2 {
                    // NATS restarts (JetStream keeps the stream on disk); publishers retry. A restart,
                    // not a crash: nats-server 2.9 writes its file store asynchronously, and a SIGKILL
                    // lost one just-acknowledged message (16 events) in one run of five.
                    await mesh.nats.stop(signal: SIGTERM)
                    try await mesh.nats.start()
                    bus.close()
                    bus = try await mesh.nats.connect(as: .gateway)
                }
                if index == 2 * batches.count / 3 { try mesh.start(.audit, name: "audit-1") }
                var ack: JetStreamPublishAck?
                let published = await eventually(timeout: .seconds(30)) {
                    ack = try? await bus.jetStreamPublish(AuditStream.subject(of: .gateway), payload: batch.payload, messageID: batch.messageID)
                    return ack != nil
                }
                acks.append(ack)
                #expect(published, "batch \(index) published")
            }
            for org in orgs {
                let expected = total / orgs.count
                let complete = try await eventually(timeout: .seconds(90)) { try await stored(mesh, chain: org).records >= expected }
                #expect(complete, "every event of \(org) is stored")
                if !complete {
                    // Which batches are missing, and where they are: in the stream, set aside, or lost by NATS.
                    let report = try await missingBatches(mesh, events: events, batchSize: 16, acks: acks, bus: bus)
                    Issue.record("missing: \(report)")
                }
                try await Task.sleep(for: .milliseconds(300))
                let counts = try await stored(mesh, chain: org)
                #expect(counts.records == expected && counts.events == expected, "\(org): \(counts) of \(expected), each once")
                let (status, output) = try await runWarden(["audit", "verify", "--org", org], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                #expect(status == 0 && output.contains("intact: \(expected) records"), "\(output)")
            }
        }
    }

    /// Events already in the stream when an audit replica starts, while its schema is still being
    /// migrated (here: the migration's lock held), are not taken before the schema is ready, then
    /// stored; none is set aside. (They were once taken at once: one that PostgreSQL refused with
    /// "no such table" just before another replica's migration committed was set aside, and the
    /// record missed it; CI saw it once in about fifteen runs of the test above.)
    @Test func eventsWaitingWhileTheSchemaIsMigratedAreStoredNotSetAside() async throws {
        try await withMesh { mesh in
            let bus = try await mesh.nats.connect(as: .gateway)
            defer { bus.close() }
            try await bus.ensureStream(AuditPublisher.streamSpec)
            try await bus.ensureConsumer(AuditPublisher.consumerSpec)
            #expect(await publishAsGateway(callEvents(org: "acme", 0..<20), on: bus))
            try await withDatabaseClient(mesh.database, as: .audit) { client in
                try await client.withConnection { connection in

                    try await connection.query("SELECT pg_advisory_lock(hashtext('warden.migrations.audit'))", logger: TestEnvironment.logger)
                    try mesh.start(.audit)
                    // The instance waits for the lock (its migration is blocked) and has taken nothing from the stream.
                    let waiting = try await eventually(timeout: .seconds(30)) {
                        var blocked = 0
                        for try await count in try await connection.query(
                            "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", logger: TestEnvironment.logger
                        ).decode(Int.self) {
                            blocked = count
                        }
                        return blocked > 0
                    }
                    #expect(waiting, "the audit instance's migration waits for the lock")
                    try await Task.sleep(for: .seconds(1))
                    #expect(mesh.processes["audit"]?.isRunning == true)
                    let backlog = try await bus.consumerState(stream: AuditStream.name, consumer: AuditPublisher.consumerSpec.durableName)
                    #expect(backlog.pending == 1 && backlog.ackPending == 0, "nothing delivered before the schema is ready: \(backlog)")
                    try await connection.query("SELECT pg_advisory_unlock(hashtext('warden.migrations.audit'))", logger: TestEnvironment.logger)
                }
            }
            // (Until the schema is migrated, the table is not there to count.)
            let complete = await eventually(timeout: .seconds(30)) { (try? await stored(mesh, chain: "acme"))?.records == 20 }
            let counts = try await stored(mesh, chain: "acme")
            #expect(complete, "every event is stored: \(counts)")
            let quarantined = try await withDatabaseClient(mesh.database, as: .audit) { client in
                var count = -1
                for try await value in try await client.query("SELECT count(*)::int FROM audit.quarantine", logger: TestEnvironment.logger).decode(
                    Int.self)
                {
                    count = value
                }
                return count
            }
            #expect(quarantined == 0, "nothing set aside")
        }
    }

    @Test func withoutTheAuditStreamRequestsAreRefusedOnceTheSpoolIsFullThenResumeAndNothingIsLost() async throws {
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
                let enforcement = PolicyEnforcementTests()
                let calls = [("corp__web_search", #"{"query": "one"}"#), ("corp__web_search", #"{"query": "two"}"#)]
                // The set-up's own records (the agent, the server) may hold the spool of 2 for a
                // moment: calls are refused until they are published, and then run.
                let ranBefore = try await eventually(timeout: .seconds(30)) {
                    let (before, _) = try await enforcement.run(mesh.gatewayURL, token: token, calls)
                    return before.calls.count == 2 && before.calls.allSatisfy { $0["ok"] as? Bool == true }
                }
                #expect(ranBefore, "calls run while the stream takes events")

                // The stream is gone: the listing and the first call fill the spool of 2;
                // the second call is refused, saying why, and /readyz says the gateway is not ready.
                let bus = try await mesh.nats.connect(as: .gateway)
                defer { bus.close() }
                try await bus.deleteStream(AuditStream.name)
                let duringCalls = [("corp__web_search", #"{"query": "during"}"#), ("corp__web_search", #"{"query": "refused"}"#)]
                let (during, duringOutput) = try await enforcement.run(mesh.gatewayURL, token: token, duringCalls)
                #expect(during.calls.first?["ok"] as? Bool == true, "\(duringOutput)")
                #expect(
                    during.calls.last?["code"] as? Int == -32045,
                    "\(duringOutput)\ngateway: \(String(mesh.processes["gateway"]?.output.suffix(4_000) ?? ""))")
                #expect((during.calls.last?["message"] as? String)?.contains("Audit is unavailable") == true, "\(duringOutput)")
                let notReady = await eventually(timeout: .seconds(15)) {
                    guard
                        let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: mesh.gatewayURL + "/readyz"), timeout: .seconds(5))
                    else { return false }
                    let body = String(buffer: (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer())
                    return response.status == .serviceUnavailable && body.contains("the audit stream does not take events")
                }
                #expect(notReady, "/readyz says audit is unavailable")

                // The stream returns: the spool drains and requests run again.
                try await bus.ensureStream(AuditPublisher.streamSpec)
                try await bus.ensureConsumer(AuditPublisher.consumerSpec)
                let resumed = try await eventually(timeout: .seconds(30)) {
                    let (after, _) = try await enforcement.run(mesh.gatewayURL, token: token, calls)
                    return after.calls.count == 2 && after.calls.allSatisfy { $0["ok"] as? Bool == true }
                }
                #expect(resumed, "requests run again once the stream is back")
                // The call that ran while the stream was gone is on record (spooled, then published);
                // the refused one ran nowhere.
                let onRecord = try await eventually(timeout: .seconds(30)) {
                    let json = try await warden(["audit", "query", "--org", "acme", "--action", "mcp.tools.call", "--limit", "1000", "--json"])
                    let records = try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: Data(json.utf8)).records
                    return records.contains { $0.event.call?.arguments?.contains("during") == true && $0.event.outcome == .success }
                }
                #expect(onRecord, "the spooled call reached the record")
                let json = try await warden(["audit", "query", "--org", "acme", "--action", "mcp.tools.call", "--limit", "1000", "--json"])
                let records = try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: Data(json.utf8)).records
                #expect(!records.contains { $0.event.call?.arguments?.contains("refused") == true }, "a refused call did not run")
                #expect(try await warden(["audit", "verify", "--org", "acme"]).contains("is intact"))
            }
        }
    }
}

extension AuditDeliveryTests {
    @Test func storedRecordsAreAnnouncedForSIEMsAndFollowedByTail() async throws {
        try await withMesh { mesh in
            try mesh.start(.gateway)
            try mesh.start(.audit)
            try await mesh.waitForAudit()
            let bus = try await mesh.nats.connect(as: .gateway)
            defer { bus.close() }
            func publish(_ range: Range<Int>) async {
                #expect(await publishAsGateway(callEvents(org: "acme", range), on: bus))
            }
            await publish(0..<3)
            let first = try await eventually(timeout: .seconds(30)) {
                let (_, output) = try await runWarden(
                    ["audit", "query", "--org", "acme", "--json"], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                return output.contains("corp__tool2")
            }
            #expect(first)
            // A SIEM's subscription (here with the audit service's NATS user) and `warden audit tail`.
            let siem = try await mesh.nats.connect(as: .audit, name: "siem")
            defer { siem.close() }
            let announced = try siem.subscribe(try #require(AuditStream.storedSubject(org: "acme")), queue: nil)
            let tail = try ChildProcess(
                name: "warden-audit-tail", executable: try TestEnvironment.binaries.appendingPathComponent("warden"),
                arguments: ["audit", "tail", "--org", "acme", "--json"],
                environment: ["WARDEN_URL": mesh.gatewayURL, "WARDEN_ADMIN_TOKEN": TestMesh.adminToken])
            let following = await eventually(timeout: .seconds(15)) { tail.output.contains("following the audit record after record 3") }
            #expect(following, "\(tail.output)")
            await publish(3..<8)
            let received = await withTaskGroup(of: [AuditChainedRecord]?.self) { group in
                group.addTask {
                    var received: [AuditChainedRecord] = []
                    for await message in announced {
                        guard let record = try? EnvelopeCoding.decoder().decode(AuditChainedRecord.self, from: message.payload) else { continue }
                        received.append(record)
                        if received.count == 5 { break }
                    }
                    return received
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(20))
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first ?? []
            }
            #expect(received.map(\.position) == [4, 5, 6, 7, 8], "each stored record is announced once, in chain order")
            let followed = await eventually(timeout: .seconds(15)) { (3..<8).allSatisfy { tail.output.contains("corp__tool\($0)") } }
            #expect(followed, "\(tail.output)")
            #expect(!tail.output.contains("corp__tool2\""), "tail starts after the newest record")
            _ = await tail.stop(signal: SIGTERM)
        }
    }
}
