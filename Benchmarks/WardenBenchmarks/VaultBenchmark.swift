import ArgumentParser
import Foundation
import Logging
import WardenContracts
import WardenNATS
import WardenServiceKit

/// The vault over NATS, against a running vault (`make bench` starts a release build): secret
/// writes per second with many in flight, sequential reads with the org key cached, and how fast
/// an org key rotation rewraps data keys.
struct VaultBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vault", abstract: "Secret writes, reads and org key rotation over NATS.")

    @Option var url: String
    @Option(help: "Writes in flight.") var concurrency = 32
    @Option(help: "Seconds of the write run.") var seconds = 5
    @Option(help: "Sequential reads measured (after a warm-up).") var reads = 5_000

    func run() async throws {
        let connection = try await BenchSupport.connect(url, name: "bench-vault", inboxScope: "gateway")
        defer { connection.close() }
        let client = ServiceClient(bus: connection, caller: "gateway/bench")
        let value = Data(repeating: 0x61, count: 64).base64EncodedString()
        @Sendable func write(_ path: String) async throws {
            _ = try await client.call(
                SecretEndpoints.write, SecretWrite(org: "bench", path: path, value: value, actor: "bench"), timeout: .seconds(30))
        }
        // The org key exists before anything is timed.
        try await write("warm-up")

        let written = try await BenchSupport.throughput(concurrency: concurrency, seconds: seconds) { worker, count in
            try await write("load/\(worker)/\(count)")
        }
        print(
            String(
                format: "secret writes with %d in flight: %.0f writes/s over %d s (%d secrets, 64-byte values)", concurrency,
                Double(written) / Double(seconds), seconds, written))

        let paths = (0..<100).map { "load/0/\($0)" }
        for path in paths { _ = try await client.call(SecretEndpoints.read, SecretReference(org: "bench", path: path)) }
        let (samples, bare) = try await BenchSupport.withBareEcho(connection, url: url) { echo in
            try await BenchSupport.alternating(
                reads,
                { index in
                    _ = try await client.call(SecretEndpoints.read, SecretReference(org: "bench", path: paths[index % paths.count]))
                }, baseline: echo)
        }
        func percentile(_ p: Double) -> String { BenchSupport.percentile(samples, p) }
        print(
            "secret read, org key cached (\(reads) sequential reads over NATS): p50 \(percentile(0.5)), p90 \(percentile(0.9)), p99 \(percentile(0.99))"
        )
        print("a bare NATS request/reply between two processes, in alternating rounds with the reads: p50 \(BenchSupport.percentile(bare, 0.5))")

        let report = try await client.call(VaultKeyEndpoints.rotateOrgKey, KeyRotationRequest(org: "bench"), timeout: .seconds(3600))
        print(
            String(
                format: "org key rotation: %d data keys rewrapped in %.2f s (%.0f data keys/s)", report.dataKeys, report.seconds,
                Double(report.dataKeys) / max(report.seconds, 0.001)))
    }
}
