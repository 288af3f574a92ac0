import Foundation
import Logging
import WardenContracts
import WardenNATS

/// Writes audit events to the audit stream (`AuditStream`), waiting for JetStream to store each;
/// the event's id makes a retried publish count once. A publish that fails is logged as an error
/// (the event is lost to the record, so operators must see it); the caller's work goes on.
package struct AuditPublisher: Sendable {
    let bus: NATSConnection?
    let logger: Logger

    package init(bus: NATSConnection?, logger: Logger) {
        self.bus = bus
        self.logger = logger
    }

    package func publish(_ event: AuditEvent) async {
        guard let bus else { return }
        var event = event
        if event.requestID == nil { event.requestID = RequestID.current }
        do {
            let payload = try EnvelopeCoding.encoder().encode(event)
            _ = try await bus.jetStreamPublish(AuditStream.subject(of: event.service), payload: payload, messageID: event.id)
        } catch {
            logger.error(
                "an audit event could not be written", metadata: ["audit.action": "\(event.action)", "audit.id": "\(event.id)", "error": "\(error)"])
        }
    }

    /// The audit service's durable consumer of the stream, shared by its replicas. The gateway creates
    /// it with the stream: the audit service only joins its deliver group (it may use no JetStream API).
    package static let consumerSpec = JetStreamConsumerSpec(stream: AuditStream.name, durableName: "audit-store", deliverGroup: "audit")

    /// The stream's configuration (the gateway creates it at start-up).
    package static var streamSpec: JetStreamStreamSpec {
        var spec = JetStreamStreamSpec(name: AuditStream.name, subjects: AuditStream.subjects, maxAge: AuditStream.maxAge)
        spec.duplicateWindow = .seconds(120)
        return spec
    }
}
