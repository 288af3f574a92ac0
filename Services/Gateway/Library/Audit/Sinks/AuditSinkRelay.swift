import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// Sends each org's stored audit records to its webhook sinks (`AuditSinks`), in chain order, at
/// least once. The chain is the outbox: a sink's row (`AuditSinkCursors`) says how far it got, and a
/// round reads the records after that from the audit service (`audit.records`, up to `batch`),
/// posts them signed (`WebhookSignature`), and moves the row on only when the sink answered 2xx.
/// Every replica runs a relay; a sink is taken by one at a time (a lease), so a replica stopping,
/// crashing or being added loses and reorders nothing. When to try again is `AuditSinkSchedule`'s.
package struct AuditSinkRelay: Service {
    let cursors: AuditSinkCursors
    let sinks: OrgSecretDocument<AuditSinks>
    let client: ServiceClient
    let instance: String
    let startup: StartupGate
    let logger: Logger
    /// How often a replica looks for due sinks when none was.
    var poll = Duration.milliseconds(500)
    var timeout = Duration.seconds(10)
    /// Records per delivery at most.
    static let batch = 100
    /// Sinks one replica delivers to at once.
    static let concurrency = 8

    package init(
        cursors: AuditSinkCursors, sinks: OrgSecretDocument<AuditSinks>, client: ServiceClient, instance: String, startup: StartupGate, logger: Logger
    ) {
        self.cursors = cursors
        self.sinks = sinks
        self.client = client
        self.instance = instance
        self.startup = startup
        self.logger = logger
    }

    package func run() async throws {
        do { try await cancelWhenGracefulShutdown { try await startup.wait() } } catch { return }
        // Its own client: redirects are not followed (an endpoint must not send the gateway on).
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(redirectConfiguration: .disallow))
        var warned = false
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let claims: [AuditSinkCursors.Claim]
            do {
                claims = try await cursors.claim(instance: instance, limit: Self.concurrency)
                warned = false
            } catch {
                if !warned { logger.warning("cannot read the audit sinks' positions now", metadata: ["error": "\(error)"]) }
                warned = true
                claims = []
            }
            if claims.isEmpty {
                try? await Task.sleep(for: poll)
                continue
            }
            // A round started finishes (its lease is given back) even when the stop comes meanwhile.
            await withDiscardingTaskGroup { group in
                for claim in claims { group.addTask { await self.round(claim, http: http) } }
            }
        }
        try? await cursors.releaseAll(instance: instance)
        try? await http.shutdown()
    }

    /// One round for one sink: read, post, record how it went.
    func round(_ claim: AuditSinkCursors.Claim, http: HTTPClient) async {
        let outcome: AuditSinkSchedule.Round
        do {
            guard let sink = try await sinks.value(org: claim.org)?.sinks.first(where: { $0.id == claim.sink }) else {
                // Removed (through another replica, whose change this one's cache had not seen).
                try await cursors.remove(org: claim.org, sink: claim.sink)
                return
            }
            outcome = try await deliver(claim, to: sink, http: http)
        } catch {
            outcome = .failed("the records or the sink's settings cannot be read now (\(type(of: error)))")
        }
        let update = AuditSinkSchedule.next(after: outcome, from: claim.cursor)
        switch outcome {
        case .delivered: Counter(label: "warden_audit_sink_deliveries_total", dimensions: [("outcome", "delivered")]).increment()
        case .failed(let reason):
            Counter(label: "warden_audit_sink_deliveries_total", dimensions: [("outcome", "failed")]).increment()
            logger.warning(
                "an audit sink did not take records; trying again later",
                metadata: [
                    "org": "\(claim.org)", "sink": "\(claim.sink)", "attempts": "\(update.cursor.attempts)", "error": "\(reason)",
                    "retry.seconds": "\(update.delay.components.seconds)",
                ])
        case .nothingNew: break
        }
        do { try await cursors.release(claim, update, instance: instance) } catch {
            // The lease runs out and the round is made again: at least once.
            logger.warning("an audit sink's position could not be stored", metadata: ["sink": "\(claim.sink)", "error": "\(error)"])
        }
    }

    func deliver(_ claim: AuditSinkCursors.Claim, to sink: AuditSink, http: HTTPClient) async throws -> AuditSinkSchedule.Round {
        let page = try await client.call(
            AuditEndpoints.records, AuditRecordsRequest(org: claim.org, after: claim.cursor.deliveredThrough, limit: Self.batch), timeout: timeout)
        guard let first = page.records.first, let last = page.records.last else { return .nothingNew }
        if first.position > claim.cursor.deliveredThrough + 1 {
            logger.warning(
                "records an audit sink had not received were removed by retention first",
                metadata: [
                    "org": "\(claim.org)", "sink": "\(sink.id)", "from": "\(claim.cursor.deliveredThrough + 1)", "to": "\(first.position - 1)",
                ])
        }
        let body = try EnvelopeCoding.encoder().encode(AuditSinkDelivery(org: claim.org, sink: sink.id, records: page.records))
        var request = HTTPClientRequest(url: sink.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "warden-gateway/\(WardenVersion.current)")
        let delivery = "\(claim.org)/\(sink.id)/\(first.position)-\(last.position)"
        for (name, value) in WebhookSignature.headers(secret: sink.secret, body: body, event: "audit.records", delivery: delivery) {
            request.headers.add(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(data: body))
        do {
            let response = try await http.execute(request, timeout: .seconds(timeout.components.seconds))
            _ = try? await response.body.collect(upTo: 64 << 10)
            guard (200..<300).contains(response.status.code) else { return .failed("HTTP \(response.status.code)") }
        } catch {
            return .failed("cannot reach the sink (\(type(of: error)))")
        }
        Counter(label: "warden_audit_sink_records_total").increment(by: page.records.count)
        return .delivered(through: last.position, more: page.next != nil)
    }
}
