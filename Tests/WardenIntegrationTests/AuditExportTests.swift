import Crypto
import Foundation
import PostgresNIO
import Testing
import WardenAuditChain
import WardenContracts
import WardenGateway
import WardenNATS
import WardenServiceKit

/// Signed checkpoints and exports: an export verifies on its own with the published keys and fails
/// after any one-byte edit; a chain rewritten in PostgreSQL with every hash recomputed fails at the
/// checkpoint that signed what was there.
@Suite(.serialized) struct AuditExportTests {
    static let key = Curve25519.Signing.PrivateKey()
    static var keys: [String: Curve25519.Signing.PublicKey] { ["test-key": key.publicKey] }

    static func signed(_ org: String?, _ position: Int64, _ hash: String, kind: AuditCheckpoint.Kind = .checkpoint) throws -> AuditCheckpoint {
        let statement = AuditCheckpoint.statement(kind: kind, org: org, position: position, hash: hash, signedAt: 1_800_000_000_000)
        return AuditCheckpoint(
            kind: kind, org: org, position: position, hash: hash, signedAt: 1_800_000_000_000, keyID: "test-key",
            signature: try key.signature(for: Data(statement.utf8)).base64EncodedString())
    }

    /// Six records of org acme, checkpoints at 3 and 6, as `warden audit export` writes them.
    static func export(_ format: AuditExport.Format, base: Bool = false, relabelled: Bool = false) throws -> Data {
        var records: [AuditChainedRecord] = []
        var previous = AuditChain.genesis
        for position in Int64(1)...6 {
            let event = AuditEvent(
                id: "e\(position)", time: Date(timeIntervalSince1970: 1_800_000_000 + Double(position)), service: .gateway, action: "mcp.tools.call",
                outcome: .success, org: "acme", actor: "agent:a1", target: "corp__search", detail: "success, \"quoted\", with a comma")
            let body = String(decoding: try EnvelopeCoding.encoder().encode(event), as: UTF8.self)
            let hash = AuditChain.hash(previous: previous, position: position, body: body)
            records.append(AuditChainedRecord(position: position, previousHash: previous, hash: hash, body: body))
            previous = hash
        }
        let checkpoints = [try signed("acme", 3, records[2].hash), try signed("acme", 6, records[5].hash)]
        if base {
            // Retention removed records 1–3: the chain starts after the checkpoint at 3.
            // A checkpoint passed off as a base is not one: the vault signs bases as such.
            let start = relabelled ? checkpoints[0] : try signed("acme", 3, records[2].hash, kind: .base)
            var data = AuditExport.header(org: "acme", base: start, format: format)
            data += AuditExport.page(
                AuditChainPage(records: Array(records.dropFirst(3)), checkpoints: [checkpoints[1]], base: nil, next: nil), format: format)
            return data
        }
        var data = AuditExport.header(org: "acme", base: nil, format: format)
        data += AuditExport.page(AuditChainPage(records: Array(records.prefix(4)), checkpoints: checkpoints, base: nil, next: 4), format: format)
        data += AuditExport.page(AuditChainPage(records: Array(records.dropFirst(4)), checkpoints: checkpoints, base: nil, next: nil), format: format)
        return data
    }

    static func intact(_ data: Data) -> Bool { (try? AuditExport.verify(data, keys: keys))?.intact == true }

    @Test(arguments: AuditExport.Format.allCases) func anExportVerifiesOnItsOwnAndFailsAfterAnyOneByteEdit(_ format: AuditExport.Format) throws {
        for base in [false, true] {
            let data = try Self.export(format, base: base)
            let result = try AuditExport.verify(data, keys: Self.keys)
            #expect(result.intact && result.records == (base ? 3 : 6) && result.signedThrough == 6, "\(result)")
            #expect(result.org == "acme")
            // Every byte matters: change each one in turn (to a character it is not).
            var unnoticed: [Int] = []
            for offset in data.indices {
                var edited = data
                edited[offset] = edited[offset] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
                if Self.intact(edited) { unnoticed.append(offset) }
            }
            #expect(
                unnoticed.isEmpty,
                "edits not noticed at \(unnoticed.prefix(5)): \(unnoticed.prefix(3).map { String(decoding: data[max(0, $0 - 20)..<min(data.count, $0 + 20)], as: UTF8.self) })"
            )
        }
        // Without the signer's key nothing verifies.
        #expect(try AuditExport.verify(try Self.export(format), keys: ["test-key": Curve25519.Signing.PrivateKey().publicKey]).intact == false)
        // A checkpoint relabelled as the chain's base (to pass off removed records as retention) fails.
        let relabelled = try AuditExport.verify(try Self.export(format, base: true, relabelled: true), keys: Self.keys)
        #expect(!relabelled.intact && relabelled.problem?.contains("not a base the vault signed") == true, "\(relabelled)")
    }

    @Test func aChainRewrittenWithEveryHashRecomputedFailsAtItsCheckpoint() throws {
        var rows: [AuditChainRow] = []
        var previous = AuditChain.genesis
        for position in Int64(1)...5 {
            let body = #"{"n":\#(position)}"#
            let hash = AuditChain.hash(previous: previous, position: position, body: body)
            rows.append(AuditChainRow(position: position, body: body, previousHash: previous, hash: hash))
            previous = hash
        }
        let checkpoint = try Self.signed("acme", 4, rows[3].hash)
        func walk(_ rows: [AuditChainRow]) -> String? {
            var walk = AuditChainWalk(checkpoints: [checkpoint], keys: Self.keys)
            for row in rows { if let problem = walk.check(row) { return problem } }
            return walk.finish(headPosition: rows.last?.position, headHash: rows.last?.hash)
        }
        #expect(walk(rows) == nil)
        // Record 2 changed, and every hash after it recomputed: only the signature can tell.
        var rewritten = Array(rows.prefix(1))
        for position in Int64(2)...5 {
            let body = position == 2 ? #"{"n":"changed"}"# : rows[Int(position) - 1].body
            let hash = AuditChain.hash(previous: rewritten.last!.hash, position: position, body: body)
            rewritten.append(AuditChainRow(position: position, body: body, previousHash: rewritten.last!.hash, hash: hash))
        }
        #expect(walk(rewritten)?.hasPrefix("record 4 is not the record signed") == true, "\(walk(rewritten) ?? "")")
        // Records the checkpoint signed, removed from the end together with the head.
        #expect(walk(Array(rows.prefix(3)))?.hasPrefix("records 4–4 were signed") == true)
    }
}

extension AuditExportTests {
    @Test func anExportFromTheMeshVerifiesOfflineAndARewrittenChainDoesNot() async throws {
        try await withMesh { mesh in
            try mesh.start(.gateway)
            try mesh.start(.vault)
            try mesh.start(.audit, extra: ["WARDEN_AUDIT_CHECKPOINT_SECONDS": "1"])
            try await mesh.waitForAudit()
            func warden(_ arguments: [String], succeeds: Bool = true) async throws -> String {
                let (status, output) = try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                #expect((status == 0) == succeeds, "warden \(arguments.joined(separator: " ")): \(output)")
                return output
            }
            // Forty call events, batched and published as the gateway does.
            let bus = try await mesh.nats.connect(as: .gateway)
            defer { bus.close() }
            #expect(await publishAsGateway(callEvents(org: "acme", 0..<40), on: bus))
            let signed = try await eventually(timeout: .seconds(60)) {
                let (_, output) = try await runWarden(["audit", "verify", "--org", "acme"], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                return output.contains("intact: 40 records, signed through record 40")
            }
            #expect(signed, "the audit service signs the chain's head within seconds")

            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("audit-export-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let keys = directory.appendingPathComponent("keys.json").path
            try Data(try await warden(["audit", "keys"]).utf8).write(to: URL(fileURLWithPath: keys))
            for format in ["ndjson", "csv"] {
                let file = directory.appendingPathComponent("acme.\(format)").path
                _ = try await warden(["audit", "export", "--org", "acme", "--format", format, "--out", file])
                let verified = try await warden(["audit", "verify", "--file", file, "--keys", keys])
                #expect(verified.contains("is intact: 40 records, signed through record 40"), "\(verified)")
                // One byte changed in the middle of the file.
                var edited = try Data(contentsOf: URL(fileURLWithPath: file))
                let offset = edited.count / 2
                edited[offset] = edited[offset] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
                try edited.write(to: URL(fileURLWithPath: file))
                let broken = try await warden(["audit", "verify", "--file", file, "--keys", keys], succeeds: false)
                #expect(broken.contains("NOT intact") || broken.contains("cannot be read"), "\(broken)")
            }
            // Without --keys, the keys come from the gateway's published list.
            let fetched = directory.appendingPathComponent("again.ndjson").path
            _ = try await warden(["audit", "export", "--org", "acme", "--out", fetched])
            #expect(try await warden(["audit", "verify", "--file", fetched]).contains("is intact"))

            // Someone with write access to PostgreSQL changes record 5 and recomputes every hash after
            // it (and the head): the hash chain alone would hold; the checkpoint does not.
            try await withDatabaseClient(mesh.database, as: .audit) { client in
                var rows: [(Int64, String)] = []
                for try await row in try await client.query(
                    "SELECT position, body FROM audit.records WHERE chain = 'acme' ORDER BY position", logger: TestEnvironment.logger
                ).decode((Int64, String).self) {
                    rows.append(row)
                }
                var previous = AuditChain.genesis
                for (position, body) in rows {
                    let changed = position == 5 ? body.replacingOccurrences(of: "corp__tool", with: "corp__TOOL") : body
                    let hash = AuditChain.hash(previous: previous, position: position, body: changed)
                    try await client.query(
                        """
                        UPDATE audit.records SET body = \(changed), previous_hash = \(previous), hash = \(hash),
                          name = replace(name, 'corp__tool', CASE WHEN position = 5 THEN 'corp__TOOL' ELSE 'corp__tool' END)
                        WHERE chain = 'acme' AND position = \(position)
                        """, logger: TestEnvironment.logger)
                    previous = hash
                }
                try await client.query("UPDATE audit.chain_heads SET hash = \(previous) WHERE chain = 'acme'", logger: TestEnvironment.logger)
                // And removes the audit schema's copies of the checkpoints: verification asks the vault.
                try await client.query("DELETE FROM audit.checkpoints WHERE chain = 'acme'", logger: TestEnvironment.logger)
            }
            let rewritten = try await warden(["audit", "verify", "--org", "acme"], succeeds: false)
            #expect(rewritten.contains("is not the record signed") && rewritten.contains("rewritten"), "\(rewritten)")
        }
    }
}

extension AuditExportTests {
    @Test func retentionRemovesWholeLeadingSegmentsUpToACheckpointAndTheRestStillVerifies() async throws {
        try await withMesh { mesh in
            try mesh.start(.gateway)
            try mesh.start(.vault)
            try mesh.start(.audit, extra: ["WARDEN_AUDIT_CHECKPOINT_SECONDS": "1"])
            try await mesh.waitForAudit()
            func warden(_ arguments: [String], succeeds: Bool = true) async throws -> String {
                let (status, output) = try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                #expect((status == 0) == succeeds, "warden \(arguments.joined(separator: " ")): \(output)")
                return output
            }
            let bus = try await mesh.nats.connect(as: .gateway)
            defer { bus.close() }
            func publish(_ range: Range<Int>, time: Date = Date()) async throws {
                #expect(await publishAsGateway(callEvents(org: "keep", range, time: time), on: bus))
            }
            func signed(through position: Int) async throws -> Bool {
                try await eventually(timeout: .seconds(60)) {
                    let (_, output) = try await runWarden(
                        ["audit", "verify", "--org", "keep"], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                    return output.contains("signed through record \(position) ")
                }
            }
            // Two signed segments: records 1–20, made 40 days ago, then 21–30, made now.
            try await publish(0..<20, time: Date().addingTimeInterval(-40 * 86_400))
            #expect(try await signed(through: 20))
            try await publish(20..<30)
            #expect(try await signed(through: 30))
            // Retention is held by the vault too, and it signs a base only over a checkpoint it signed
            // longer ago than the period: whoever writes the audit schema cannot cut by shortening
            // the period there (or by moving records' times: verification names that).
            #expect(try await warden(["audit", "retention", "--org", "keep", "--days", "30"]).contains("30 days"))
            try await withDatabaseClient(mesh.database, as: .audit) { client in
                try await client.query("UPDATE audit.retention SET days = 1 WHERE chain = 'keep'", logger: TestEnvironment.logger)
            }
            try await Task.sleep(for: .seconds(3))
            let untouched = try await warden(["audit", "verify", "--org", "keep"])
            #expect(untouched.contains("intact") && !untouched.contains("removed by retention"), "\(untouched)")
            // Time passes (simulated in the vault): its checkpoint of 20 is 40 days old; with 30 days
            // kept, the cut is at that checkpoint (the one at 30 covers records within the period).
            try await withDatabaseClient(mesh.database, as: .vault) { client in
                try await client.query(
                    """
                    UPDATE vault.audit_signatures SET signed_at = signed_at - 40 * 86400000::bigint
                    WHERE chain = 'keep' AND kind = 'checkpoint' AND position <= 20
                    """, logger: TestEnvironment.logger)
            }
            let cut = try await eventually(timeout: .seconds(30)) {
                let (_, output) = try await runWarden(["audit", "verify", "--org", "keep"], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                return output.contains("is intact") && output.contains("records 1–20 were removed by retention")
            }
            #expect(cut, "records 1–20 are removed and the rest verifies from the checkpoint at 20")
            func records() async throws -> [AuditRecord] {
                let json = try await warden(["audit", "query", "--org", "keep", "--limit", "1000", "--json"])
                return try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: Data(json.utf8)).records
            }
            let noted = try await eventually(timeout: .seconds(15)) { try await records().contains { $0.event.action == "audit.retention_applied" } }
            #expect(noted, "the removal is itself on record")
            let records = try await records()
            #expect(records.map(\.position).min() == 21, "\(records.map(\.position))")
            #expect(records.contains { $0.event.action == "admin.put" && $0.event.target == "PUT /admin/v1/audit/retention" })
            // An export starts at the checkpoint and verifies on its own.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("keep-\(UUID().uuidString).ndjson").path
            defer { try? FileManager.default.removeItem(atPath: file) }
            _ = try await warden(["audit", "export", "--org", "keep", "--out", file])
            let verified = try await warden(["audit", "verify", "--file", file])
            #expect(verified.contains("is intact") && verified.contains("records 1–20 were removed by retention"), "\(verified)")
            #expect(try await warden(["audit", "retention", "--org", "keep", "--forever"]).contains("for good"))
        }
    }
}
