import Foundation
import Logging
import WardenContracts
import WardenNATS
import WardenServiceKit

/// Tells of each change once it is stored: on `warden.approvals.changes` for waiting
/// gateways and approvers' live channels (core NATS: a lost message delays a waiting gateway until
/// its next look, never decides anything), and to the audit record with who made it.
struct ApprovalAnnouncer: Sendable {
    let bus: NATSConnection
    let audit: AuditPublisher
    let logger: Logger

    init(bus: NATSConnection, logger: Logger) {
        self.bus = bus
        self.audit = AuditPublisher(bus: bus, logger: logger)
        self.logger = logger
    }

    func announce(_ changes: [ApprovalStore.Change]) async {
        for change in changes {
            let request = change.request
            do {
                let payload = try EnvelopeCoding.encoder().encode(ApprovalChange(event: change.event, request: request))
                try bus.publish(ApprovalEndpoints.changesSubject, payload: payload)
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
