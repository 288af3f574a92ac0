import Foundation
import Logging
import WardenContracts
import WardenNATS
import WardenServiceKit

/// Tells of each change once it is stored: on `warden.approvals.changes` for waiting
/// gateways and approvers' live channels (core NATS: a lost message delays a waiting gateway until
/// its next look, never decides anything), on the notices stream for Slack and webhooks (JetStream:
/// delivered until acknowledged), and to the audit record with who made it.
struct ApprovalAnnouncer: Sendable {
    let bus: NATSConnection
    let audit: AuditPublisher
    let logger: Logger

    init(bus: NATSConnection, logger: Logger) {
        self.bus = bus
        self.audit = AuditPublisher(bus: bus, logger: logger)
        self.logger = logger
    }

    /// The changes sent to Slack and webhooks (votes and runs stay on the live channels).
    static let noticed: Set<String> = ["opened", "approved", "rejected", "expired"]

    func announce(_ changes: [ApprovalStore.Change]) async {
        for change in changes {
            let request = change.request
            let announced = ApprovalChange(event: change.event, request: request)
            do {
                let payload = try EnvelopeCoding.encoder().encode(announced)
                try bus.publish(ApprovalEndpoints.changesSubject, payload: payload)
                // Approvers' Slack and webhooks hear of what they can act on or should know.
                if Self.noticed.contains(change.event) {
                    _ = try await bus.jetStreamPublish(ApprovalEndpoints.noticesSubject, payload: payload, messageID: announced.id)
                }
            } catch {
                logger.warning("an approval change could not be announced", metadata: ["approval.id": "\(request.id)", "error": "\(error)"])
            }
            let outcome: AuditEvent.Outcome = ["rejected", "expired"].contains(change.event) ? .denied : .success
            await audit.publish(
                AuditEvent(
                    service: .approvals, action: "approval.\(change.event)", outcome: outcome, org: request.org, actor: change.actor,
                    target: request.id, detail: "\(request.tool) for agent \(request.agent) (rule \(request.rule)): \(request.state.rawValue)"))
        }
    }
}
