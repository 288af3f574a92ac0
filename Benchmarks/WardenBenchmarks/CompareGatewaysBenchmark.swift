import ArgumentParser
import Foundation

/// Gateways that differ in one thing (`make bench`'s `compare` part: the release gateway against
/// itself built with other swift arguments or run with another environment), `tools/call` to each
/// named tool in alternating rounds, with each gateway's CPU time per call. Every gateway is compared
/// with the first.
struct CompareGatewaysBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare", abstract: "tools/call through gateways that differ in one thing, in alternating rounds.")

    @Option(help: "A gateway as LABEL=URL (its /mcp URL); the first is the baseline. Give two or more.") var gateway: [String]
    @Option(help: "The gateways' process ids, in the same order, comma-separated: their CPU time per call is measured too.")
    var pids: String?
    @Option(help: "A tool to call through every gateway (namespaced, e.g. fast__echo); each is measured on its own.") var tool: [String]
    @Option(help: "Rounds of sequential calls (p50).") var rounds = 5
    @Option(help: "Rounds of throughput windows: each gateway gets one window a round.") var throughputRounds = 12
    @Option var concurrency = 32
    @Option(help: "Seconds a throughput window lasts.") var seconds = 1
    @Option(help: "Milliseconds of quiet after each window before the gateway's CPU time is read.") var settleMilliseconds = 300
    @Option var requests = 3_000

    func validate() throws {
        let labelled = gateway.allSatisfy { entry in
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return parts.count == 2 && parts.allSatisfy { !$0.isEmpty }
        }
        guard gateway.count >= 2, labelled else { throw ValidationError("give two or more --gateway LABEL=URL, neither part empty") }
        guard !tool.isEmpty else { throw ValidationError("give at least one --tool") }
        guard rounds > 0, throughputRounds > 0, seconds > 0, concurrency > 0, requests > 0, settleMilliseconds >= 0 else {
            throw ValidationError(
                "--rounds, --throughput-rounds, --seconds, --concurrency and --requests must be at least 1, --settle-milliseconds at least 0")
        }
        if let pids, pids.split(separator: ",").compactMap({ Int32($0) }).count != gateway.count {
            throw ValidationError("--pids takes one process id a gateway, in the same order")
        }
    }

    func run() async throws {
        let gateways = gateway.map { entry -> (label: String, url: String) in
            let parts = entry.split(separator: "=", maxSplits: 1)
            return (String(parts[0]), String(parts[1]))
        }
        let processes = pids?.split(separator: ",").compactMap { Int32($0) } ?? []
        // The agent token, when the gateways require one, comes from the environment, never the command line.
        let token = ProcessInfo.processInfo.environment["WARDEN_BENCH_AGENT_TOKEN"]
        let proxy = try ProxyBenchmark.parse([
            "--url", gateways[0].url, "--concurrency", "\(concurrency)", "--seconds", "\(seconds)", "--requests", "\(requests)",
        ])
        for tool in tool {
            print("### \(tool)")
            let alternating = AlternatingGateways(
                proxy: proxy, latencyRounds: rounds, throughputRounds: throughputRounds, settle: .milliseconds(settleMilliseconds))
            let result = try await alternating.run(try await alternating.gateways(gateways, tool: tool, token: token, pids: processes))
            let medians = result.medians
            print("")
            for (index, gateway) in gateways.enumerated() {
                print(
                    "\(tool), \(gateway.label): median \(Int(medians[index].rate)) calls/s, p50 \(ObservabilityBenchmark.ms(medians[index].p50))"
                        + (medians[index].cpu.map { String(format: ", gateway CPU %.0f µs a call", $0) } ?? ""))
            }
            for index in gateways.indices.dropFirst() {
                let cost = result.cost(of: index, against: 0)
                print(
                    String(
                        format: "%@, %@ against %@: %+.1f%% of throughput (median of %d paired rounds; quartiles %+.1f%%, %+.1f%%)", tool,
                        gateways[index].label, gateways[0].label, -cost.median * 100, throughputRounds, -cost.upper * 100, -cost.lower * 100))
                if let cpu = medians[index].cpu, let baseline = medians[0].cpu {
                    print(
                        String(
                            format: "%@, %@: gateway CPU a call %+.1f%% against %@", tool, gateways[index].label, (cpu / baseline - 1) * 100,
                            gateways[0].label))
                }
            }
            print("")
        }
    }
}
