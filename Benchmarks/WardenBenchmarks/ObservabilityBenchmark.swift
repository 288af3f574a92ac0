import ArgumentParser
import Foundation
import Hummingbird

/// What metrics and tracing cost on the proxy path: the same gateway three times over (metrics and
/// tracing as deployed by default — metrics on, tracing off; tracing on at 100% sampling, exporting to
/// `otlp-sink`; metrics off), `tools/call` to the same stdio server, measured in alternating rounds so
/// that the machine's drift falls on all three alike.
struct ObservabilityBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observability", abstract: "tools/call through a gateway with metrics, with tracing at 100%, and with neither.")

    @Option(help: "The /mcp URL of the gateway as deployed by default (metrics on, tracing off).") var plain: String
    @Option(help: "The /mcp URL of the same gateway with WARDEN_OTLP_ENDPOINT set and every trace sampled.") var traced: String
    @Option(help: "The /mcp URL of the same gateway with metrics off (WARDEN_BENCHMARK_NO_METRICS=true).") var unmetered: String
    @Option(help: "The three gateways' process ids, in the same order, comma-separated: their CPU time per call is measured too.")
    var pids: String?
    @Option var rounds = 5
    @Option var concurrency = 32
    @Option var seconds = 5
    @Option var requests = 3_000

    func run() async throws {
        let proxy = try ProxyBenchmark.parse([
            "--url", plain, "--concurrency", "\(concurrency)", "--seconds", "\(seconds)", "--requests", "\(requests)",
        ])
        let gateways = [("metrics on, tracing off", plain), ("tracing at 100%", traced), ("metrics off", unmetered)]
        let processes = pids?.split(separator: ",").compactMap { Int32($0) } ?? []
        var alternating: [AlternatingGateways.Gateway] = []
        for (index, (label, url)) in gateways.enumerated() {
            alternating.append(
                .init(
                    label: label, operation: try await proxy.poster(url, tool: "bench__echo"),
                    pid: processes.count == gateways.count ? processes[index] : nil))
        }
        let medians = try await AlternatingGateways(proxy: proxy, rounds: rounds).run(alternating)
        print("")
        for (index, gateway) in gateways.enumerated() {
            print("\(gateway.0): median \(Int(medians[index].rate)) calls/s, p50 \(Self.ms(medians[index].p50))")
        }
        print(String(format: "tracing at 100%% costs %.1f%% of throughput (target at most 10%%)", (1 - medians[1].rate / medians[0].rate) * 100))
        print(String(format: "metrics cost %.1f%% of throughput (target at most 3%%)", (1 - medians[0].rate / medians[2].rate) * 100))
        let medianCPU = medians.compactMap(\.cpu)
        if medianCPU.count == gateways.count {
            for (index, gateway) in gateways.enumerated() {
                print(String(format: "%@: gateway CPU %.0f µs a call (median)", gateway.0, medianCPU[index]))
            }
            print(
                String(
                    format: "tracing at 100%% adds %.1f%% gateway CPU a call; metrics add %.1f%%", (medianCPU[1] / medianCPU[0] - 1) * 100,
                    (medianCPU[0] / medianCPU[2] - 1) * 100))
        }
    }

    /// User and system CPU time of a process so far (`/proc/<pid>/stat`), in seconds.
    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let end = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based), in clock ticks.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func ms(_ d: Duration) -> String {
        String(format: "%.3f ms", Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15)
    }
}
