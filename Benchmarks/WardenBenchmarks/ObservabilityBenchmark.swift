import ArgumentParser
import Foundation
import Hummingbird

/// What metrics and tracing cost on the proxy path: the same gateway three times over (metrics and
/// tracing as deployed by default — metrics on, tracing off; tracing on at 100% sampling, exporting to
/// `otlp-sink`; metrics off), `tools/call` to the same stdio server, measured in alternating rounds so
/// that the machine's drift falls on all three alike. The throughput costs are the medians of the
/// rounds' paired comparisons (the two windows compared are at most two windows apart); the CPU
/// costs are ratios of each gateway's median CPU a call.
struct ObservabilityBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observability", abstract: "tools/call through a gateway with metrics, with tracing at 100%, and with neither.")

    @Option(help: "The /mcp URL of the gateway as deployed by default (metrics on, tracing off).") var plain: String
    @Option(help: "The /mcp URL of the same gateway with WARDEN_OTLP_ENDPOINT set and every trace sampled.") var traced: String
    @Option(help: "The /mcp URL of the same gateway with metrics off (WARDEN_BENCHMARK_NO_METRICS=true).") var unmetered: String
    @Option(help: "The three gateways' process ids, in the same order, comma-separated: their CPU time per call is measured too.")
    var pids: String?
    @Option(help: "Rounds of sequential calls (p50).") var rounds = 5
    @Option(help: "Rounds of throughput windows: each gateway gets one window a round.") var throughputRounds = 30
    @Option(
        help:
            "A file the rounds' rates are appended to (one line a round); the costs are then also reported over every round in it, from earlier runs against other processes too."
    )
    var roundsFile: String?
    @Option var concurrency = 32
    @Option(help: "Seconds a throughput window lasts.") var seconds = 1
    @Option(
        help:
            "Milliseconds of quiet after each window before the gateway's CPU time is read: longer than the traced gateway's export interval (OTEL_BSP_SCHEDULE_DELAY), so that its export falls in its own window."
    )
    var settleMilliseconds = 300
    @Flag(help: "The third gateway is the first again (an A/A control), not one with metrics off: label it so.") var control = false
    @Option var requests = 3_000

    func validate() throws {
        guard rounds > 0, throughputRounds > 0, seconds > 0, concurrency > 0, requests > 0, settleMilliseconds >= 0 else {
            throw ValidationError("--rounds, --throughput-rounds, --seconds, --concurrency and --requests must be at least 1")
        }
        // Every order of the three gateways as often as the others: each pair as often one way round as the other.
        guard throughputRounds % 6 == 0 else { throw ValidationError("--throughput-rounds must be a multiple of 6 (the three gateways' orders)") }
    }

    func run() async throws {
        let proxy = try ProxyBenchmark.parse([
            "--url", plain, "--concurrency", "\(concurrency)", "--seconds", "\(seconds)", "--requests", "\(requests)",
        ])
        let gateways: [(label: String, url: String)] = [
            ("metrics on, tracing off", plain), ("tracing at 100%", traced),
            (control ? "metrics on again (A/A control)" : "metrics off", unmetered),
        ]
        let processes = pids?.split(separator: ",").compactMap { Int32($0) } ?? []
        let alternating = AlternatingGateways(
            proxy: proxy, latencyRounds: rounds, throughputRounds: throughputRounds, settle: .milliseconds(settleMilliseconds))
        let result = try await alternating.run(try await alternating.gateways(gateways, tool: "bench__echo", pids: processes))
        let medians = result.medians
        print("")
        for (index, gateway) in gateways.enumerated() {
            print("\(gateway.0): median \(Int(medians[index].rate)) calls/s, p50 \(Self.ms(medians[index].p50))")
        }
        let tracing = result.cost(of: 1, against: 0)
        let metrics = result.cost(of: 0, against: 2)
        print(
            String(
                format: "tracing at 100%% costs %.1f%% of throughput (median of %d paired rounds; quartiles %.1f%%, %.1f%%; target at most 10%%)",
                tracing.median * 100, throughputRounds, tracing.lower * 100, tracing.upper * 100))
        print(
            String(
                format: "metrics cost %.1f%% of throughput (median of %d paired rounds; quartiles %.1f%%, %.1f%%; target at most 3%%)",
                metrics.median * 100, throughputRounds, metrics.lower * 100, metrics.upper * 100))
        if let roundsFile {
            let pooled = try Self.pool(result.rates, into: roundsFile)
            let tracing = AlternatingGateways.cost(pooled, of: 1, against: 0)
            let metrics = AlternatingGateways.cost(pooled, of: 0, against: 2)
            print(
                String(
                    format:
                        "over every round in %@ (%d): tracing at 100%% costs %.1f%% (quartiles %.1f%%, %.1f%%), metrics %.1f%% (quartiles %.1f%%, %.1f%%)",
                    roundsFile, pooled[0].count, tracing.median * 100, tracing.lower * 100, tracing.upper * 100, metrics.median * 100,
                    metrics.lower * 100, metrics.upper * 100))
        }
        print(
            String(
                format: "(ratios of the medians: tracing %.1f%%, metrics %.1f%%)", (1 - medians[1].rate / medians[0].rate) * 100,
                (1 - medians[0].rate / medians[2].rate) * 100))
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

    /// Appends the rounds' rates (`rates[gateway][round]`) to the file, a line a round, and returns
    /// every round the file holds, in the same shape.
    static func pool(_ rates: [[Double]], into path: String) throws -> [[Double]] {
        let lines = rates[0].indices.map { round in rates.map { String($0[round]) }.joined(separator: " ") }
        let earlier = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        var pooled = Array(repeating: [Double](), count: rates.count)
        for line in earlier + lines {
            let values = line.split(separator: " ").compactMap { Double($0) }
            guard values.count == rates.count else { throw ValidationError("\(path) holds a line that is not \(rates.count) rates: \(line)") }
            for (index, value) in values.enumerated() { pooled[index].append(value) }
        }
        try (earlier + lines).map { $0 + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        return pooled
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
