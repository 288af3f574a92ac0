import ArgumentParser
import Foundation

/// What recording every call costs the proxy, and where that cost goes: the same gateway twice (one
/// recording every request, one recording nothing: `WARDEN_BENCHMARK_UNAUDITED=true`), `tools/call`
/// to the same stdio server, in alternating rounds, with the CPU time per call of the gateway under
/// load and of the processes auditing adds work to (the audit service, NATS, PostgreSQL).
struct AuditCostBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit-cost", abstract: "tools/call through a gateway recording every request and through one recording nothing.")

    @Option(help: "The /mcp URL of the gateway recording every request.") var audited: String
    @Option(help: "The /mcp URL of the same gateway recording nothing.") var unaudited: String
    @Option(help: "The two gateways' process ids, in the same order, comma-separated.") var gatewayPids: String
    @Option(help: "The audit service's process id.") var auditPid: Int32
    @Option(help: "nats-server's process id.") var natsPid: Int32
    @Option(help: "The PostgreSQL postmaster's process id (its backends are counted with it).") var postgresPid: Int32
    @Option var rounds = 5
    @Option var concurrency = 32
    @Option var seconds = 5
    @Option var requests = 3_000

    func run() async throws {
        let proxy = try ProxyBenchmark.parse([
            "--url", audited, "--concurrency", "\(concurrency)", "--seconds", "\(seconds)", "--requests", "\(requests)",
        ])
        let gateways = [("without call records", unaudited), ("with call records", audited)]
        let gatewayProcesses = gatewayPids.split(separator: ",").compactMap { Int32($0) }
        guard gatewayProcesses.count == 2 else { throw ValidationError("--gateway-pids takes the two gateways' process ids") }
        let unauditedProcesses = [gatewayProcesses[0]]
        let auditedProcesses = [gatewayProcesses[1]]
        var operations: [@Sendable () async throws -> Void] = []
        for (_, url) in gateways { operations.append(try await proxy.poster(url, tool: "bench__echo")) }
        // Per gateway: calls/s, p50, and µs of CPU a call for [gateway, audit, NATS, PostgreSQL].
        var rates = Array(repeating: [Double](), count: 2)
        var p50s = Array(repeating: [Duration](), count: 2)
        var cpus = Array(repeating: [[Double]](), count: 2)
        let parts = ["gateway", "audit service", "NATS", "PostgreSQL"]
        // The audited gateway again with the audit service stopped (SIGSTOP; NATS still stores the
        // batches): its own cost, apart from the machine's contention with the audit service.
        var paused: [(rate: Double, cpu: Double)] = []
        for round in 1...rounds {
            do {
                kill(auditPid, SIGSTOP)
                // Resumed whatever happens (an error, a stop).
                defer { kill(auditPid, SIGCONT) }
                let pausedBefore = Self.cpuSeconds(auditedProcesses)
                let pausedRate = try await proxy.throughput(operations[1])
                paused.append((pausedRate, (Self.cpuSeconds(auditedProcesses) - pausedBefore) / (pausedRate * Double(seconds)) * 1e6))
            }
            // The audit service catches up (about 35,000 events at over 10,000 a second) before the
            // rounds below are measured.
            try await Task.sleep(for: .seconds(8))
            for (index, operation) in operations.enumerated() {
                let latency = try await proxy.sequential(operation)
                let groups = [index == 0 ? unauditedProcesses : auditedProcesses, [auditPid], [natsPid]]
                let before = groups.map { Self.cpuSeconds($0) }
                let postgresBefore = Self.cpuByProcess(Self.family(of: postgresPid))
                let rate = try await proxy.throughput(operation)
                let calls = rate * Double(seconds)
                // Work auditing defers (the flush, the audit service's batches) is counted after a
                // second for it to finish; the next measurement starts after that.
                try await Task.sleep(for: .seconds(1))
                var used = zip(groups, before).map { (Self.cpuSeconds($0) - $1) / calls * 1e6 }
                // Backends are listed again: one started meanwhile counts whole, one that ended is lost.
                let postgresAfter = Self.cpuByProcess(Self.family(of: postgresPid))
                used.append(postgresAfter.reduce(0) { $0 + $1.value - (postgresBefore[$1.key] ?? 0) } / calls * 1e6)
                rates[index].append(rate)
                p50s[index].append(latency.p50)
                cpus[index].append(used)
                let breakdown = zip(parts, used).map { String(format: "%@ %.0f", $0, $1) }.joined(separator: ", ")
                print(
                    "round \(round), \(gateways[index].0): \(Int(rate)) calls/s at \(concurrency) in flight, p50 \(ObservabilityBenchmark.ms(latency.p50)); "
                        + "CPU µs a call: \(breakdown)")
            }
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        print(
            String(
                format: "with call records, the audit service paused: median %.0f calls/s, gateway CPU %.0f µs a call", median(paused.map(\.rate)),
                median(paused.map(\.cpu))))
        let medianRates = rates.map(median)
        print("")
        for (index, gateway) in gateways.enumerated() {
            let cpu = parts.indices.map { part in median(cpus[index].map { $0[part] }) }
            print(
                "\(gateway.0): median \(Int(medianRates[index])) calls/s, p50 \(ObservabilityBenchmark.ms(p50s[index].sorted()[rounds / 2])); "
                    + "CPU µs a call (medians): " + zip(parts, cpu).map { String(format: "%@ %.0f", $0, $1) }.joined(separator: ", ")
                    + String(format: "; total %.0f", cpu.reduce(0, +)))
        }
        print(String(format: "with call records: %.1f%% of the throughput without (target at least 90%%)", medianRates[1] / medianRates[0] * 100))
    }

    /// CPU seconds so far of these processes together.
    static func cpuSeconds(_ processes: [Int32]) -> Double {
        processes.compactMap { ObservabilityBenchmark.cpuSeconds($0) }.reduce(0, +)
    }

    static func cpuByProcess(_ processes: [Int32]) -> [Int32: Double] {
        Dictionary(processes.compactMap { pid in ObservabilityBenchmark.cpuSeconds(pid).map { (pid, $0) } }, uniquingKeysWith: { first, _ in first })
    }

    /// A process and its children (PostgreSQL's backends, which come and go with connections).
    static func family(of parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return [parent]
            + entries.compactMap { Int32($0) }.filter { pid in
                guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let end = stat.lastIndex(of: ")") else {
                    return false
                }
                let fields = stat[stat.index(after: end)...].split(separator: " ")
                return fields.count > 1 && Int32(fields[1]) == parent
            }
    }
}
