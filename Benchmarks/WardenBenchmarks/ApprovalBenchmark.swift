import ArgumentParser
import Crypto
import Foundation
import Logging
import ServiceLifecycle
import WardenContracts
import WardenGateway
import WardenNATS
import WardenServiceKit

/// From an approver's decision to the approved call's result, as a gateway lives it, against a
/// running approvals service (its own database): the decision goes over NATS; the change it
/// announces wakes the waiting call (`ApprovalChanges`, `ApprovalWaiters`, as in the gateway),
/// which reads its request, takes the claim, runs (a no-op standing in for the tool) and stores
/// the outcome. Measured with nothing else pending, then with `pending` other requests held open
/// by as many waiting calls that read their request back every 5 s, as the gateway's do.
struct ApprovalBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals", abstract: "Decision-to-result latency of approvals (a running approvals service).")

    @Option var url: String
    @Option(help: "Decisions measured in each phase.") var samples = 300
    @Option(help: "Requests held pending in the second phase.") var pending = 1_000

    func run() async throws {
        let connection = try await BenchSupport.connect(url, name: "bench-approvals", inboxScope: "gateway")
        defer { connection.close() }
        let client = ServiceClient(bus: connection, caller: "gateway/bench")
        let waiters = ApprovalWaiters()
        let changes = ApprovalChanges(bus: connection, waiters: waiters, feeds: ApproverFeeds(), logger: Logger(label: "bench"))
        let org = "bench-\(UUID().uuidString.prefix(8).lowercased())"
        let approver = Approver(org: org, user: "usr_bench_approver", role: "approver")
        @Sendable func opening(_ label: String) -> ApprovalOpening {
            let key = SHA256.hash(data: Data("\(org)/\(label)".utf8)).map { String(format: "%02x", $0) }.joined()
            return ApprovalOpening(
                org: org, agent: "agt_bench", user: "usr_bench", client: nil, server: "bench", tool: "bench__send", arguments: #"{"n":"\#(label)"}"#,
                callKey: key, rule: "bench", approverRoles: ["approver"], approverUsers: [], needed: 1, expiresSeconds: 3600, allowSelf: false)
        }
        /// One decision: the waiting call is woken by it, claims, runs and finishes.
        @Sendable func decideOnce(_ label: String) async throws -> Duration {
            let ticket = try await client.call(ApprovalEndpoints.open, opening(label))
            let generation = waiters.watch(ticket.id)
            defer { waiters.unwatch(ticket.id) }
            let clock = ContinuousClock()
            let start = clock.now
            async let decided = client.call(ApprovalEndpoints.decide, ApprovalDecision(approver: approver, id: ticket.id, verdict: .approve))
            // As the gateway's waiting call does: woken by any change of the request (its own
            // "opened" announcement may arrive first), it reads the request until it is decided.
            var seen = generation
            var current = ticket
            while current.state == .pending {
                await waiters.wait(ticket.id, after: seen, timeout: .seconds(10))
                seen = waiters.generation(ticket.id)
                current = try await client.call(ApprovalEndpoints.ticket, ApprovalReference(id: ticket.id))
                guard clock.now - start < .seconds(10) else { throw ValidationError("no decision within 10 s") }
            }
            guard current.state == .approved else { throw ValidationError("expected approved, got \(current.state)") }
            let claimID = UUID().uuidString
            let claimed = try await client.call(ApprovalEndpoints.claim, ApprovalClaim(id: ticket.id, claim: claimID))
            guard claimed.claimed else { throw ValidationError("the claim was not granted") }
            _ = try await client.call(
                ApprovalEndpoints.finish, ApprovalFinish(id: ticket.id, claim: claimID, outcome: #"{"content":[]}"#, outcomeIsError: false))
            let elapsed = clock.now - start
            _ = try await decided
            return elapsed
        }
        func phase(_ name: String) async throws {
            var measured: [Duration] = []
            for index in 0..<samples { measured.append(try await decideOnce("\(name)-\(index)")) }
            measured.sort()
            print(
                "decision to result, \(name): p50 \(BenchSupport.percentile(measured, 0.5)), p90 \(BenchSupport.percentile(measured, 0.9)), "
                    + "p99 \(BenchSupport.percentile(measured, 0.99)) (\(samples) decisions)")
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await changes.run() }
            try await Task.sleep(for: .milliseconds(200))
            for index in 0..<20 { _ = try await decideOnce("warm-\(index)") }
            try await phase("nothing else pending")
            // Hold `pending` requests open, each with a waiting call that looks again every 5 s.
            let clock = ContinuousClock()
            var opens: [Duration] = []
            var held: [String] = []
            for index in 0..<pending {
                let start = clock.now
                held.append(try await client.call(ApprovalEndpoints.open, opening("held-\(index)")).id)
                opens.append(clock.now - start)
            }
            func milliseconds(_ durations: ArraySlice<Duration>) -> String {
                String(
                    format: "%.2f ms",
                    durations.reduce(0.0) { $0 + Double($1.components.attoseconds) / 1e15 + Double($1.components.seconds) * 1e3 }
                        / Double(durations.count))
            }
            print(
                "opening a request: first 100 average \(milliseconds(opens.prefix(100))), last 100 (with \(pending - 100) pending) average "
                    + milliseconds(opens.suffix(100)))
            let (stop, stopping) = AsyncStream.makeStream(of: Void.self)
            for id in held {
                group.addTask {
                    let generation = waiters.watch(id)
                    defer { waiters.unwatch(id) }
                    // Spread over the 5 s like calls that arrived over time.
                    try? await Task.sleep(for: .milliseconds(Int.random(in: 0..<5000)))
                    while !Task.isCancelled {
                        await waiters.wait(id, after: generation, timeout: .seconds(5))
                        if Task.isCancelled { break }
                        _ = try? await client.call(ApprovalEndpoints.ticket, ApprovalReference(id: id))
                    }
                }
            }
            try await Task.sleep(for: .seconds(6))
            try await phase("\(pending) others pending, their calls waiting")
            stopping.finish()
            _ = stop
            group.cancelAll()
        }
    }
}
