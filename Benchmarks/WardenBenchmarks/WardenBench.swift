import ArgumentParser
import Foundation
import Logging
import WardenContracts
import WardenNATS
import WardenServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// `warden-bench`: measurements recorded in BENCHMARKS.md. Run through `make bench`, which starts the
/// servers; every figure compares like with like in one run.
@main
struct WardenBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warden-bench",
        abstract: "Warden benchmarks.",
        subcommands: [
            NATSRequestReply.self, NATSResponder.self, ProxyBenchmark.self, BenchMCPServer.self, TokenValidationBenchmark.self, VaultBenchmark.self,
            CredentialBenchmark.self, PolicyBenchmark.self, PolicyDecisionBenchmark.self, ApprovalBenchmark.self, AuditBenchmark.self,
            OAuthBenchmark.self, ObservabilityBenchmark.self, OTLPSink.self, AuditCostBenchmark.self, PostgresQueryBenchmark.self,
            PolicyCostBenchmark.self, AuditReadBenchmark.self, CompareGatewaysBenchmark.self, DownstreamClientBenchmark.self,
        ]
    )
}

struct BenchPayload: Codable, Sendable {
    var id: Int
    var tool: String
}

let benchEndpoint = "bench.echo"
/// The same echo served as every service serves its endpoints.
let benchServiceEndpoint = ServiceEndpoint<BenchPayload, BenchPayload>(.policy, "bench-echo")

/// Request/reply between two processes: this one and a responder child it starts.
struct NATSRequestReply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nats", abstract: "NATS request/reply between two processes.")

    @Option var url: String
    @Option(help: "Sequential requests measured (after a warm-up).") var requests = 20_000
    @Option(help: "Requests in flight for the throughput run.") var concurrency = 32
    @Option(help: "Seconds of the throughput run.") var seconds = 5
    @Option(help: "Measure only this series (bare, served or called), e.g. under a profiler.") var series: String?

    func run() async throws {
        let connection = try await BenchSupport.connect(url, name: "bench-client", noRespondersRetryWindow: .seconds(5))
        defer { connection.close() }
        try await BenchSupport.withBareEcho(connection, url: url) { echo in try await measure(connection, bare: echo) }
    }

    private func measure(_ connection: NATSConnection, bare echo: () async throws -> Void) async throws {
        let payload = try EnvelopeCoding.encode(RequestEnvelope(BenchPayload(id: 1, tool: "github_create_issue")))
        _ = try await connection.request(benchServiceEndpoint.subject, payload: payload, timeout: .seconds(10))
        for _ in 0..<2_000 {
            try await echo()
            _ = try await connection.request(benchServiceEndpoint.subject, payload: payload, timeout: .seconds(2))
        }
        // The three in alternating rounds, so that the machine's drift falls on all alike.
        let client = ServiceClient(bus: connection, caller: "gateway/bench")
        let body = BenchPayload(id: 1, tool: "github_create_issue")
        var bare: [Duration] = []
        var served: [Duration] = []
        var called: [Duration] = []
        let clock = ContinuousClock()
        let rounds = 10
        for _ in 0..<rounds {
            for _ in 0..<(series == nil || series == "bare" ? requests / rounds : 0) {
                let start = clock.now
                try await echo()
                bare.append(clock.now - start)
            }
            for _ in 0..<(series == nil || series == "served" ? requests / rounds : 0) {
                let start = clock.now
                _ = try await connection.request(benchServiceEndpoint.subject, payload: payload, timeout: .seconds(2))
                served.append(clock.now - start)
            }
            for _ in 0..<(series == nil || series == "called" ? requests / rounds : 0) {
                let start = clock.now
                _ = try await client.call(benchServiceEndpoint, body)
                called.append(clock.now - start)
            }
        }
        bare.sort()
        served.sort()
        called.sort()
        func summary(_ samples: [Duration]) -> String {
            guard !samples.isEmpty else { return "not measured" }
            return
                "p50 \(BenchSupport.percentile(samples, 0.5)), p90 \(BenchSupport.percentile(samples, 0.9)), p99 \(BenchSupport.percentile(samples, 0.99)), max \(BenchSupport.percentile(samples, 1.0))"
        }
        print("sequential request/reply (\(bare.count) requests, \(payload.count)-byte envelope): \(summary(bare))")
        print("the same through a service's responder (ServiceResponder: envelope, span, metrics): \(summary(served))")
        print("the same from a service's client as well (ServiceClient: headers, envelope, span): \(summary(called))")

        let completed = try await BenchSupport.throughput(concurrency: concurrency, seconds: seconds) { _, _ in
            _ = try await connection.request(benchEndpoint, payload: payload, timeout: .seconds(5))
        }
        let rate = Double(completed) / Double(seconds)
        print(String(format: "throughput with %d in flight: %.0f requests/s over %d s", concurrency, rate, seconds))
    }
}

/// The other process: answers `bench.echo` with a decoded-and-re-encoded envelope, as a service would.
struct NATSResponder: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nats-responder", abstract: "Answer bench.echo (started by `nats`).")

    @Option var url: String

    func run() async throws {
        let connection = try NATSConnection(configuration: .init(servers: [url], name: "bench-responder"), logger: Logger(label: "bench"))
        guard await connection.waitUntilConnected(timeout: .seconds(5)) else { throw ValidationError("cannot connect to \(url)") }
        let subscription = try connection.subscribe(benchEndpoint, queue: "bench")
        WardenMetrics.bootstrap()  // as in a service: the responder's metrics are recorded
        let served = ServiceResponder(benchServiceEndpoint, bus: connection, logger: Logger(label: "bench")) { body, _ in body }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await served.run() }
            let decoder = EnvelopeCoding.decoder()
            let encoder = EnvelopeCoding.encoder()
            for await message in subscription {
                guard let request = try? decoder.decode(RequestEnvelope<BenchPayload>.self, from: message.payload),
                    let reply = try? encoder.encode(ReplyEnvelope.success(request.body))
                else { continue }
                try? connection.respond(to: message, payload: reply)
            }
        }
    }
}
