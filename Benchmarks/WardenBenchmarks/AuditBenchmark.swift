import ArgumentParser
import Foundation
import Logging
import WardenContracts
import WardenGateway
import WardenNATS
import WardenServiceKit

/// Audit ingestion and verification against a running audit service (its own database): call events
/// shaped like the gateway's, batched as the gateway batches them, published to the audit stream;
/// measured from the first publish until the audit service has stored every one in its orgs' hash
/// chains. Then one org's chain is verified.
struct AuditBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Audit ingestion and verification (a running audit service).")

    @Option var url: String
    @Option(help: "Events published.") var events = 100_000
    @Option(help: "Orgs (chains) they are spread over.") var orgs = 4
    @Option(help: "Rounds after verification alternating random and time-ordered event ids, A B B A (a multiple of 4; 0: none).")
    var idRounds = 0
    @Option(help: "Events a round of --id-rounds.") var idRoundEvents = 50_000

    func validate() throws {
        guard idRounds >= 0, idRounds % 4 == 0 else { throw ValidationError("--id-rounds must be a multiple of 4 (A B B A blocks)") }
    }

    func run() async throws {
        let connection = try await BenchSupport.connect(url, name: "bench-audit", inboxScope: "gateway")
        defer { connection.close() }
        try await connection.ensureStream(AuditPublisher.streamSpec)
        try await connection.ensureConsumer(AuditPublisher.consumerSpec)
        let client = ServiceClient(bus: connection, caller: "gateway/bench")
        let run = UUID().uuidString.prefix(8).lowercased()
        let names = (0..<orgs).map { "bench-\(run)-\($0)" }
        let (elapsed, publishedAfter) = try await ingest(events, into: names, connection: connection, client: client, ids: .timeOrdered)
        print(
            String(
                format: "ingestion: %d events (%d orgs, batches of up to %d) stored in %.2f s (published in %.2f s): %.0f events/s", events, orgs,
                CallAuditor.batchEvents, elapsed.seconds, publishedAfter.seconds, Double(events) / elapsed.seconds))
        let verifyStart = ContinuousClock.now
        let verification = try await client.call(AuditEndpoints.verify, AuditVerifyRequest(org: names[0]), timeout: .seconds(300))
        let verifyTime = ContinuousClock.now - verifyStart
        guard verification.intact else { throw ValidationError("the chain does not verify: \(verification.problem ?? "")") }
        print(
            String(
                format: "verification: %lld records in %.3f s: %.0f records/s (%.1f s per million)", verification.records, verifyTime.seconds,
                Double(verification.records) / verifyTime.seconds, verifyTime.seconds / Double(verification.records) * 1e6))
        try await compareIDOrders(connection: connection, client: client)
    }

    /// How the event ids' order costs ingestion: rounds of `idRoundEvents` events each into new
    /// orgs, alternating random ids (`UUID()`) and time-ordered ones (`UniqueID`, what every
    /// service makes) as A B B A, on top of what the table already holds.
    func compareIDOrders(connection: NATSConnection, client: ServiceClient) async throws {
        guard idRounds > 0 else { return }
        var rates: [EventIDs: [Double]] = [:]
        for round in 0..<idRounds {
            let ids: EventIDs = [0, 3].contains(round % 4) ? .random : .timeOrdered
            let run = UUID().uuidString.prefix(8).lowercased()
            let names = (0..<orgs).map { "bench-\(run)-\($0)" }
            let (elapsed, _) = try await ingest(idRoundEvents, into: names, connection: connection, client: client, ids: ids)
            let rate = Double(idRoundEvents) / elapsed.seconds
            rates[ids, default: []].append(rate)
            print(
                "ingestion round \(round + 1), \(ids.rawValue) event ids: "
                    + String(format: "%d events in %.2f s: %.0f events/s", idRoundEvents, elapsed.seconds, rate))
        }
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        let random = median(rates[.random] ?? [0])
        let ordered = median(rates[.timeOrdered] ?? [0])
        print(
            String(
                format: "ingestion by event id order (medians): random %.0f events/s, time-ordered %.0f events/s (%+.1f%%)", random, ordered,
                (ordered / random - 1) * 100))
    }

    enum EventIDs: String { case random, timeOrdered = "time-ordered" }

    /// Publishes `count` events spread over the orgs, batched as the gateway batches them, and waits
    /// until the audit service has stored them all: the time until then, and the time publishing took.
    func ingest(
        _ count: Int, into names: [String], connection: NATSConnection, client: ServiceClient, ids: EventIDs
    ) async throws -> (stored: Duration, published: Duration) {
        let logger = Logger(label: "bench")
        let start = ContinuousClock.now
        var published = 0
        while published < count {
            let chunk = (published..<min(published + 4_096, count)).map { index in
                // Both kinds made in both arms, so that only the ids' order differs between them.
                let (random, timeOrdered) = (UUID().uuidString.lowercased(), UniqueID.make())
                var event = Self.event(org: names[index % names.count], index: index)
                event.id = ids == .random ? random : timeOrdered
                return event
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for batch in CallAuditor.batches(of: chunk, logger: logger) {
                    group.addTask {
                        _ = try await connection.jetStreamPublish(
                            AuditStream.subject(of: .gateway), payload: batch.payload, messageID: batch.messageID, timeout: .seconds(30))
                    }
                }
                try await group.waitForAll()
            }
            published += chunk.count
        }
        let publishedAfter = ContinuousClock.now - start
        var stored = 0
        while stored < count {
            try await Task.sleep(for: .milliseconds(20))
            stored = 0
            for name in names {
                let page = try await client.call(AuditEndpoints.query, AuditQuery(org: name, limit: 1))
                stored += Int(page.records.first?.position ?? 0)
            }
            guard ContinuousClock.now - start < .seconds(600) else {
                throw ValidationError("only \(stored) of \(count) events were stored in 10 minutes")
            }
        }
        return (ContinuousClock.now - start, publishedAfter)
    }

    /// A call event like the gateway's for an allowed, successful `tools/call`.
    static func event(org: String, index: Int) -> AuditEvent {
        AuditEvent(
            service: .gateway, action: "mcp.tools.call", outcome: .success, org: org, actor: "agent:agt_bench", target: "github__create_issue",
            detail: "success",
            call: AuditCall(
                method: "tools/call", name: "github__create_issue", server: "github", agent: "agt_bench", user: "usr_bench", client: nil,
                clientAddress: "10.0.0.\(index % 250)", session: "session-\(index % 64)", decision: "allow", result: "success", errorCode: nil,
                arguments: #"{"repo":"acme/api","title":"Issue \#(index)","body":"A benchmark event"}"#, latencyMicroseconds: 850,
                requestBytes: 180, responseBytes: 420))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
