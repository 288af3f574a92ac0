import ArgumentParser
import Foundation
import WardenContracts
import WardenNATS
import WardenServiceKit

/// A decision over NATS as the gateway asks for one before a call it has not cached: a running
/// policy service (its own database) resolves the agent, reads the policies' versions and decides
/// with its cached engine. The org's policy has `rules` rules (`PolicyBenchmark.document`).
struct PolicyDecisionBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "policy-nats", abstract: "Policy decisions over NATS (a running policy service).")

    @Option var url: String
    @Option var rules = 1_000
    @Option(help: "Sequential decisions measured (after a warm-up).") var requests = 5_000
    @Option(help: "Decisions in flight for the throughput run.") var concurrency = 32
    @Option(help: "Seconds of the throughput run.") var seconds = 5

    func run() async throws {
        let connection = try await BenchSupport.connect(url, name: "bench-policy", inboxScope: "gateway")
        defer { connection.close() }
        let client = ServiceClient(bus: connection, caller: "gateway/bench")
        let org = "bench-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await client.call(PrincipalEndpoints.createOrg, OrgCreation(id: org, name: "Bench"))
        let user = try await client.call(PrincipalEndpoints.createUser, UserCreation(org: org, email: "bench@bench.example", role: "member"))
        let agent = try await client.call(PrincipalEndpoints.createAgent, AgentCreation(org: org, name: "a", agentClass: "class4", owner: user.id))
        _ = try await client.call(
            PolicyEndpoints.apply,
            PolicyApply(scope: PolicyScope(org: org), document: PolicyBenchmark.document(rules: rules), dryRun: false, actor: "bench"),
            timeout: .seconds(60))
        let question = PolicyQuestion(org: org, agent: agent.id, tool: "x__tool4_read", roles: [], scopes: [])
        for _ in 0..<200 { _ = try await client.call(PolicyEndpoints.decide, question) }
        let (samples, bare) = try await BenchSupport.withBareEcho(connection, url: url) { echo in
            try await BenchSupport.alternating(
                requests,
                { _ in
                    let answer = try await client.call(PolicyEndpoints.decide, question)
                    guard answer.decision == "allow" else { throw ValidationError("expected allow, got \(answer.decision)") }
                }, baseline: echo)
        }
        print(
            "decision over NATS, \(rules) rules, sequential: p50 \(BenchSupport.percentile(samples, 0.5)), p99 \(BenchSupport.percentile(samples, 0.99))"
        )
        print("a bare NATS request/reply between two processes, in alternating rounds with the decisions: p50 \(BenchSupport.percentile(bare, 0.5))")
        let decided = try await BenchSupport.throughput(concurrency: concurrency, seconds: seconds) { _, _ in
            _ = try await client.call(PolicyEndpoints.decide, question)
        }
        print(String(format: "decisions with %d in flight: %.0f/s over %d s", concurrency, Double(decided) / Double(seconds), seconds))
    }
}
