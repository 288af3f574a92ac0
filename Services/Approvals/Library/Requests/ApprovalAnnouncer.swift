import Foundation
import Logging
import Metrics
import WardenContracts
import WardenNATS
import WardenServiceKit

/// Tells of each change once it is stored: on `warden.approvals.changes` for waiting gateways and
/// approvers' live channels (core NATS: a lost message delays a waiting gateway until its next look,
/// never decides anything), and to the audit record with who made it. What Slack and webhooks hear
/// was written with the change (the `notices` outbox) and is relayed to the notices stream by
/// `relay`, so a notice waits while the stream is missing or down instead of being lost.
struct ApprovalAnnouncer: Sendable {
    let bus: NATSConnection
    let store: ApprovalStore
    let audit: AuditPublisher
    let logger: Logger

    init(bus: NATSConnection, store: ApprovalStore, logger: Logger) {
        self.bus = bus
        self.store = store
        self.audit = AuditPublisher(bus: bus, logger: logger)
        self.logger = logger
    }

    func announce(_ changes: [ApprovalStore.Change]) async {
        for change in changes {
            let request = change.request
            Counter(label: "warden_approvals_changes_total", dimensions: [("event", change.event)]).increment()
            do {
                try bus.publish(ApprovalEndpoints.changesSubject, payload: try EnvelopeCoding.encoder().encode(change.announced))
            } catch {
                logger.warning("an approval change could not be announced", metadata: ["approval.id": "\(request.id)", "error": "\(error)"])
            }
            let outcome: AuditEvent.Outcome = ["rejected", "expired", "superseded", "abandoned"].contains(change.event) ? .denied : .success
            await audit.publish(
                AuditEvent(
                    service: .approvals, action: "approval.\(change.event)", outcome: outcome, org: request.org, actor: change.actor,
                    target: request.id, detail: "\(request.tool) for agent \(request.agent) (rule \(request.rule)): \(request.state.rawValue)"))
        }
    }

    /// Moves waiting notices to the notices stream (each change's id is its message id, so a notice
    /// relayed twice is stored once). Returns whether the stream took everything waiting.
    @discardableResult
    func relay() async throws -> Bool {
        var failure: (any Error)?
        _ = try await store.relayNotices { id, payload in
            do {
                _ = try await bus.jetStreamPublish(ApprovalEndpoints.noticesSubject, payload: payload, messageID: id, timeout: .seconds(2))
            } catch {
                failure = error
                throw error
            }
        }
        if let failure { throw failure }
        return true
    }
}
