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
        var operations: [@Sendable () async throws -> Void] = []
        for (_, url) in gateways { operations.append(try await proxy.poster(url, tool: "bench__echo")) }
        var rates = Array(repeating: [Double](), count: gateways.count)
        var p50s = Array(repeating: [Duration](), count: gateways.count)
        var cpus = Array(repeating: [Double](), count: gateways.count)
        let processes = pids?.split(separator: ",").compactMap { Int32($0) } ?? []
        for round in 1...rounds {
            for (index, operation) in operations.enumerated() {
                let latency = try await proxy.sequential(operation)
                let before = processes.count == gateways.count ? Self.cpuSeconds(processes[index]) : nil
                let rate = try await proxy.throughput(operation)
                let cpu = before.flatMap { start in Self.cpuSeconds(processes[index]).map { ($0 - start) / (rate * Double(seconds)) * 1e6 } }
                rates[index].append(rate)
                p50s[index].append(latency.p50)
                if let cpu { cpus[index].append(cpu) }
                print(
                    "round \(round), \(gateways[index].0): \(Int(rate)) calls/s at \(concurrency) in flight, p50 \(Self.ms(latency.p50))"
                        + (cpu.map { String(format: ", gateway CPU %.0f µs a call", $0) } ?? ""))
            }
        }
        let medianRates = rates.map { $0.sorted()[$0.count / 2] }
        let medianP50s = p50s.map { $0.sorted()[$0.count / 2] }
        print("")
        for (index, gateway) in gateways.enumerated() {
            print("\(gateway.0): median \(Int(medianRates[index])) calls/s, p50 \(Self.ms(medianP50s[index]))")
        }
        print(String(format: "tracing at 100%% costs %.1f%% of throughput (target at most 10%%)", (1 - medianRates[1] / medianRates[0]) * 100))
        print(String(format: "metrics cost %.1f%% of throughput (target at most 3%%)", (1 - medianRates[0] / medianRates[2]) * 100))
        if cpus.allSatisfy({ !$0.isEmpty }) {
            let medianCPU = cpus.map { $0.sorted()[$0.count / 2] }
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
