import ArgumentParser
import Foundation

/// What deciding every call costs the proxy (issue #13's "policy on, warm cache, within 10% of the
/// same run without it"): the same authenticated gateway twice, one deciding every call by policy
/// and checking its tool pin, one deciding nothing (`WARDEN_BENCHMARK_UNDECIDED=true`), and, for
/// scale, the same gateway without authentication; `tools/call` to a Streamable HTTP and a stdio
/// server, in alternating rounds, with each gateway's CPU time per call.
struct PolicyCostBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy-cost", abstract: "tools/call through a gateway deciding every call by policy and through one deciding nothing.")

    @Option(help: "The /mcp URL of the gateway with authentication, policy and tool pinning on.") var decided: String
    @Option(help: "The /mcp URL of the same gateway deciding nothing (WARDEN_BENCHMARK_UNDECIDED=true).") var undecided: String
    @Option(help: "The /mcp URL of the same gateway without authentication (WARDEN_AUTH_REQUIRED=false).") var open: String
    @Option(help: "The three gateways' process ids, in the same order, comma-separated.") var pids: String
    @Option var rounds = 5
    @Option var concurrency = 32
    @Option var seconds = 5
    @Option var requests = 3_000

    func run() async throws {
        // The agent token comes from the environment, never the command line.
        guard let token = ProcessInfo.processInfo.environment["WARDEN_BENCH_AGENT_TOKEN"] else {
            throw ValidationError("WARDEN_BENCH_AGENT_TOKEN must hold a token of an agent the decided gateway's policy allows")
        }
        let processes = pids.split(separator: ",").compactMap { Int32($0) }
        guard processes.count == 3 else { throw ValidationError("--pids takes the three gateways' process ids") }
        let proxy = try ProxyBenchmark.parse([
            "--url", decided, "--concurrency", "\(concurrency)", "--seconds", "\(seconds)", "--requests", "\(requests)",
        ])
        let gateways = [
            ("policy on", decided, token as String?), ("policy off", undecided, token), ("policy off, no authentication", open, nil),
        ]
        for (path, tool) in [("Streamable HTTP server", "benchhttp__echo"), ("stdio server", "bench__echo")] {
            print("### \(path)")
            var alternating: [AlternatingGateways.Gateway] = []
            for (index, (label, url, token)) in gateways.enumerated() {
                alternating.append(.init(label: label, operation: try await proxy.poster(url, tool: tool, token: token), pid: processes[index]))
            }
            let medians = try await AlternatingGateways(proxy: proxy, latencyRounds: rounds).run(alternating).medians
            print("")
            for (index, gateway) in gateways.enumerated() {
                print(
                    "\(path), \(gateway.0): median \(Int(medians[index].rate)) calls/s, p50 \(ObservabilityBenchmark.ms(medians[index].p50))"
                        + (medians[index].cpu.map { String(format: ", gateway CPU %.0f µs a call", $0) } ?? ""))
            }
            print(
                String(
                    format: "%@: policy on keeps %.1f%% of the throughput without it (target at least 90%%), p50 %+.3f ms", path,
                    medians[0].rate / medians[1].rate * 100, Self.milliseconds(medians[0].p50 - medians[1].p50)))
            if let on = medians[0].cpu, let off = medians[1].cpu, let open = medians[2].cpu {
                print(
                    String(
                        format: "%@: policy adds %.0f µs (%.1f%%) of gateway CPU a call; authentication adds %.0f µs (%.1f%%)", path, on - off,
                        (on / off - 1) * 100, off - open, (off / open - 1) * 100))
            }
            print("")
        }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
    }
}
