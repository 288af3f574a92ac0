import Foundation
import Hummingbird
import Logging
import Metrics
import ServiceLifecycle
import WardenContracts
import WardenNATS
import WardenServiceKit

/// The approvals service. Holds calls that need a human (`ApprovalStore`), takes approvers'
/// decisions, and tells waiting gateways and live approver channels of every change
/// (`ApprovalAnnouncer`). What is due without anyone acting (expiries, abandoned claims, dropping
/// stored results) is done by `ApprovalExpiry`.
///
/// Only gateways open, claim and finish requests, and decide on behalf of the approvers they
/// authenticated (NATS permissions, and each request's reply inbox, say who asks).
///
/// The platform gives it configuration, PostgreSQL (schema `approvals`), NATS, migrations, heartbeats,
/// a health responder on `warden.approvals.health` and `/livez`, `/readyz`, `/metrics`.
package struct ApprovalsService: WardenServiceDefinition {
    package static let service = WardenServiceName.approvals
    package static let migrations: [Migration] = [PlatformMigrations.instances, ApprovalStore.migration]

    package let services: [any Service]
    let store: ApprovalStore

    package func collectMetrics() async {
        guard let pending = try? await store.pendingCount() else { return }
        Gauge(label: "warden_approvals_pending").record(pending)
    }

    package init(runtime: ServiceRuntime) async throws {
        let store = ApprovalStore(database: runtime.database, logger: runtime.logger)
        self.store = store
        let announcer = ApprovalAnnouncer(bus: runtime.bus, store: store, logger: runtime.logger)
        let startup = runtime.startup
        let client = runtime.client
        let logger = runtime.logger
        @Sendable func fromGateway(_ context: WardenServiceKit.RequestContext) throws {
            guard context.isFrom(.gateway) else { throw ServiceError(.forbidden, "approval requests are handled for gateways only") }
        }
        @Sendable func actor(_ context: WardenServiceKit.RequestContext) -> String {
            "gateway:" + (context.caller?.split(separator: "/").last.map(String.init) ?? "?")
        }
        services = [
            ApprovalExpiry(store: store, announcer: announcer, startup: startup, logger: logger),
            ServiceResponder(ApprovalEndpoints.open, bus: runtime.bus, logger: logger) { opening, context in
                try fromGateway(context)
                try await startup.wait()
                let (ticket, changes) = try await store.open(opening)
                await announcer.announce(changes)
                return ticket
            },
            ServiceResponder(ApprovalEndpoints.ticket, bus: runtime.bus, logger: logger) { reference, context in
                try fromGateway(context)
                try await startup.wait()
                return try await store.ticket(reference.id)
            },
            ServiceResponder(ApprovalEndpoints.claim, bus: runtime.bus, logger: logger) { claim, context in
                try fromGateway(context)
                try await startup.wait()
                let (ticket, changes) = try await store.claim(claim, actor: actor(context))
                await announcer.announce(changes)
                return ticket
            },
            ServiceResponder(ApprovalEndpoints.finish, bus: runtime.bus, logger: logger) { finish, context in
                try fromGateway(context)
                try await startup.wait()
                guard finish.outcome.utf8.count <= ApprovalsService.maximumOutcomeBytes else {
                    throw ServiceError(.badRequest, "an outcome is at most \(ApprovalsService.maximumOutcomeBytes >> 10) KiB")
                }
                let (ticket, changes) = try await store.finish(finish, actor: actor(context))
                await announcer.announce(changes)
                return ticket
            },
            ServiceResponder(ApprovalEndpoints.list, bus: runtime.bus, logger: logger) { query, context in
                try fromGateway(context)
                try await startup.wait()
                return ApprovalRequestList(requests: try await store.list(query))
            },
            ServiceResponder(ApprovalEndpoints.get, bus: runtime.bus, logger: logger) { lookup, context in
                try fromGateway(context)
                try await startup.wait()
                return try await store.get(lookup)
            },
            ServiceResponder(ApprovalEndpoints.decide, bus: runtime.bus, logger: logger) { decision, context in
                try fromGateway(context)
                try await startup.wait()
                // Modified arguments are decided by policy again before they are accepted (the
                // gateway decides them once more when the call runs): allowed outright, or sent to
                // this same rule. Anything else (denied, or a stricter rule) is not this approver's
                // to let through.
                if let arguments = decision.arguments, decision.verdict == .approve {
                    let request = try await store.get(ApprovalLookup(approver: decision.approver, id: decision.id))
                    if let problem = ApprovalRecord.problem(arguments) { throw ServiceError(.badRequest, "modified arguments: \(problem)") }
                    let question = PolicyQuestion(
                        org: request.org, agent: request.agent, tool: request.tool, arguments: arguments, client: request.client)
                    let explanation = try await client.call(PolicyEndpoints.decide, question)
                    guard explanation.decision == "allow" || (explanation.decision == "approve" && explanation.approvalRule == request.rule) else {
                        throw ServiceError(
                            .forbidden,
                            explanation.decision == "approve"
                                ? "policy sends the call with these arguments to another approval rule; approve it as it is or reject it"
                                : "policy denies the call with these arguments; approve it as it is or reject it")
                    }
                }
                do {
                    let (request, changes) = try await store.decide(decision)
                    await announcer.announce(changes)
                    return request
                } catch let failure as ApprovalStore.ApprovalFailure {
                    await announcer.announce(failure.changes)
                    throw failure.error
                }
            },
        ]
    }

    /// The largest call outcome kept for retries (the gateway keeps larger ones to itself).
    static let maximumOutcomeBytes = 1 << 20
}
