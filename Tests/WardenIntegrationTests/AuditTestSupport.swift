import Foundation
import WardenContracts
import WardenGateway
import WardenNATS

/// Successful `tools/call` events of `org` as the gateway records them, one per number in `range`
/// (the tool is `corp__tool<n>`), made at `time`.
func callEvents(org: String, _ range: Range<Int>, time: Date = Date()) -> [AuditEvent] {
    range.map {
        AuditEvent(
            time: time, service: .gateway, action: "mcp.tools.call", outcome: .success, org: org, actor: "agent:a1", target: "corp__tool\($0)",
            detail: "success")
    }
}

/// Publishes events to the audit stream batched as the gateway batches them, each batch retried
/// until JetStream takes it (30 s at most); false if one never was.
func publishAsGateway(_ events: [AuditEvent], on bus: NATSConnection) async -> Bool {
    for batch in CallAuditor.batches(of: events, logger: TestEnvironment.logger) {
        let published = await eventually(timeout: .seconds(30)) {
            (try? await bus.jetStreamPublish(AuditStream.subject(of: .gateway), payload: batch.payload, messageID: batch.messageID)) != nil
        }
        if !published { return false }
    }
    return true
}

extension TestMesh {
    /// Waits until an audit service reports up: it then reads the audit stream. (A message JetStream
    /// delivers while no audit replica listens comes again only after the consumer's ack wait, 30 s.)
    func waitForAudit() async throws {
        try await waitFor("the audit service", timeout: .seconds(60)) { status in
            status.services.contains { $0.service == .audit && $0.status == .up }
        }
    }
}
