import ArgumentParser
import Foundation
import Logging
import WardenContracts
import WardenNATS

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
            OAuthBenchmark.self, ObservabilityBenchmark.self, OTLPSink.self, AuditCostBenchmark.self,
        ]
    )
}

struct BenchPayload: Codable, Sendable {
    var id: Int
    var tool: String
}

let benchEndpoint = "bench.echo"

/// Request/reply between two processes: this one and a responder child it starts.
struct NATSRequestReply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nats", abstract: "NATS request/reply between two processes.")

    @Option var url: String
    @Option(help: "Sequential requests measured (after a warm-up).") var requests = 20_000
    @Option(help: "Requests in flight for the throughput run.") var concurrency = 32
    @Option(help: "Seconds of the throughput run.") var seconds = 5

    func run() async throws {
        let responder = Process()
        responder.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        responder.arguments = ["nats-responder", "--url", url]
        try responder.run()
        defer {
            responder.terminate()
            responder.waitUntilExit()
        }
        let connection = try await BenchSupport.connect(url, name: "bench-client", noRespondersRetryWindow: .seconds(5))
        defer { connection.close() }
        let payload = try EnvelopeCoding.encoder().encode(RequestEnvelope(BenchPayload(id: 1, tool: "github_create_issue")))
        // Wait for the responder to subscribe.
        _ = try await connection.request(benchEndpoint, payload: payload, timeout: .seconds(10))

        for _ in 0..<2_000 { _ = try await connection.request(benchEndpoint, payload: payload, timeout: .seconds(2)) }
        var samples: [Duration] = []
        samples.reserveCapacity(requests)
        let clock = ContinuousClock()
        for _ in 0..<requests {
            let start = clock.now
            _ = try await connection.request(benchEndpoint, payload: payload, timeout: .seconds(2))
            samples.append(clock.now - start)
        }
        samples.sort()
        func percentile(_ p: Double) -> String { BenchSupport.percentile(samples, p) }
        print(
            "sequential request/reply (\(requests) requests, \(payload.count)-byte envelope): p50 \(percentile(0.5)), p90 \(percentile(0.9)), p99 \(percentile(0.99)), max \(percentile(1.0))"
        )

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
