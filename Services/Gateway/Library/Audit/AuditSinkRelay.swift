import Foundation
import Logging
import Metrics
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// Sends each org's stored audit records to its webhook sinks (`AuditSinks`), in chain order, at
/// least once. The chain is the outbox: a sink's row (`AuditSinkCursors`) says how far it got, and a
/// round reads the records after that from the audit service (`audit.records`, up to `batch`),
/// posts them signed (`WebhookSignature`, through `WebhookPoster`), and moves the row on only when
/// the sink answered 2xx. Every replica runs a relay; a sink is taken by one at a time (a lease
/// longer than a round can last), so a replica stopping, crashing or being added loses and reorders
/// nothing. Up to `concurrency` sinks are served at once, a slot taken again as soon as it frees:
/// a slow sink holds up only itself. When to try again is `AuditSinkSchedule`'s.
package struct AuditSinkRelay: Service {
    let cursors: AuditSinkCursors
    let sinks: OrgSecretDocument<AuditSinks>
    let client: ServiceClient
    let poster: WebhookPoster
    let instance: String
    let startup: StartupGate
    let logger: Logger
    /// How often a replica looks for due sinks when none was.
    var poll = Duration.milliseconds(500)
    /// Records per delivery at most.
    static let batch = 100
    /// Sinks one replica delivers to at once.
    static let concurrency = 8

    package init(
        cursors: AuditSinkCursors, sinks: OrgSecretDocument<AuditSinks>, client: ServiceClient, allowLocal: Bool, instance: String,
        startup: StartupGate, logger: Logger
    ) {
        self.cursors = cursors
        self.sinks = sinks
        self.client = client
        self.poster = WebhookPoster(allowLocal: allowLocal)
        self.instance = instance
        self.startup = startup
        self.logger = logger
    }

    package func run() async throws {
        do { try await cancelWhenGracefulShutdown { try await startup.wait() } } catch { return }
        // Children return true when a round ended, false when the poll interval passed.
        await withTaskGroup(of: Bool.self) { group in
            var inFlight = 0
            var ticking = false
            var warned = false
            while !Task.isShuttingDownGracefully, !Task.isCancelled {
                if inFlight < Self.concurrency {
                    do {
                        let claims = try await cursors.claim(instance: instance, limit: Self.concurrency - inFlight)
                        warned = false
                        for claim in claims {
                            group.addTask {
                                await self.round(claim)
                                return true
                            }
                        }
                        inFlight += claims.count
                        // More may be due: claim again before waiting.
                        if !claims.isEmpty { continue }
                    } catch {
                        if !warned { logger.warning("cannot read the audit sinks' positions now", metadata: ["error": "\(error)"]) }
                        warned = true
                    }
                }
                if !ticking {
                    group.addTask {
                        try? await Task.sleep(for: poll)
                        return false
                    }
                    ticking = true
                }
                guard let roundEnded = await group.next() else { break }
                if roundEnded { inFlight -= 1 } else { ticking = false }
            }
            // Rounds under way finish (each is bounded by the poster's time limit) and give their
            // sinks back.
        }
        try? await cursors.releaseAll(instance: instance)
    }

    /// One round for one sink: read, post, record how it went.
    func round(_ claim: AuditSinkCursors.Claim) async {
        let outcome: AuditSinkSchedule.Round
        do {
            var sink = try await sinks.value(org: claim.org)?.sinks.first { $0.id == claim.sink }
            // Added through another replica since this one read the org's sinks.
            if sink == nil { sink = try await sinks.value(org: claim.org, fresh: true)?.sinks.first { $0.id == claim.sink } }
            if let sink {
                outcome = try await deliver(claim, to: sink)
            } else {
                // Removed meanwhile: the change that removed it deletes the row too.
                outcome = .nothingNew
            }
        } catch {
            outcome = .failed(.recordsUnavailable)
        }
        let update = AuditSinkSchedule.next(after: outcome, from: claim.cursor)
        switch outcome {
        case .delivered: Counter(label: "warden_audit_sink_deliveries_total", dimensions: [("outcome", "delivered")]).increment()
        case .failed(let failure):
            Counter(label: "warden_audit_sink_deliveries_total", dimensions: [("outcome", "failed")]).increment()
            logger.warning(
                "an audit sink did not take records; trying again later",
                metadata: [
                    "org": "\(claim.org)", "sink": "\(claim.sink)", "attempts": "\(update.cursor.attempts)", "error": "\(failure)",
                    "retry.seconds": "\(update.delay.components.seconds)",
                ])
        case .nothingNew: break
        }
        do { try await cursors.release(claim, update, instance: instance) } catch {
            // The lease runs out and the round is made again: at least once.
            logger.warning("an audit sink's position could not be stored", metadata: ["sink": "\(claim.sink)", "error": "\(error)"])
        }
    }

    func deliver(_ claim: AuditSinkCursors.Claim, to sink: AuditSink) async throws -> AuditSinkSchedule.Round {
        let page = try await client.call(
            AuditEndpoints.records, AuditRecordsRequest(org: claim.org, after: claim.cursor.deliveredThrough, limit: Self.batch),
            timeout: .seconds(10))
        guard let first = page.records.first, let last = page.records.last else { return .nothingNew }
        if first.position > claim.cursor.deliveredThrough + 1 {
            logger.warning(
                "records an audit sink had not received were removed by retention first",
                metadata: [
                    "org": "\(claim.org)", "sink": "\(sink.id)", "from": "\(claim.cursor.deliveredThrough + 1)", "to": "\(first.position - 1)",
                ])
        }
        let body = try EnvelopeCoding.encoder().encode(AuditSinkDelivery(org: claim.org, sink: sink.id, records: page.records))
        let headers = WebhookSignature.headers(
            secret: sink.secret, body: body, event: "audit.records", delivery: "\(claim.org)/\(sink.id)/\(first.position)-\(last.position)")
        let posted = await poster.post(sink.url, headers: headers, body: body)
        guard posted == .delivered else { return .failed(.endpoint(posted)) }
        Counter(label: "warden_audit_sink_records_total").increment(by: page.records.count)
        return .delivered(through: last.position, more: page.next != nil)
    }
}
