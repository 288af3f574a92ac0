import Foundation

/// Gateways measured in alternating rounds, so that the machine's drift falls on all of them alike:
/// in each round and for each gateway, a sequential p50, then the throughput at the proxy's
/// concurrency with the gateway's CPU time per call (when its process id is known).
struct AlternatingGateways {
    struct Gateway {
        let label: String
        let operation: @Sendable () async throws -> Void
        let pid: Int32?
    }

    struct Medians {
        let rate: Double
        let p50: Duration
        /// µs of the gateway's CPU a call.
        let cpu: Double?
    }

    let proxy: ProxyBenchmark
    let rounds: Int

    /// Prints a line per round and gateway; returns each gateway's medians, in order.
    func run(_ gateways: [Gateway]) async throws -> [Medians] {
        var rates = Array(repeating: [Double](), count: gateways.count)
        var p50s = Array(repeating: [Duration](), count: gateways.count)
        var cpus = Array(repeating: [Double](), count: gateways.count)
        for round in 1...rounds {
            for (index, gateway) in gateways.enumerated() {
                let latency = try await proxy.sequential(gateway.operation)
                let before = gateway.pid.flatMap(ObservabilityBenchmark.cpuSeconds)
                let rate = try await proxy.throughput(gateway.operation)
                let cpu = before.flatMap { start in
                    gateway.pid.flatMap(ObservabilityBenchmark.cpuSeconds).map { ($0 - start) / (rate * Double(proxy.seconds)) * 1e6 }
                }
                rates[index].append(rate)
                p50s[index].append(latency.p50)
                if let cpu { cpus[index].append(cpu) }
                print(
                    "round \(round), \(gateway.label): \(Int(rate)) calls/s at \(proxy.concurrency) in flight, p50 \(ObservabilityBenchmark.ms(latency.p50))"
                        + (cpu.map { String(format: ", gateway CPU %.0f µs a call", $0) } ?? ""))
            }
        }
        return gateways.indices.map { index in
            Medians(
                rate: rates[index].sorted()[rounds / 2], p50: p50s[index].sorted()[rounds / 2],
                cpu: cpus[index].count == rounds ? cpus[index].sorted()[rounds / 2] : nil)
        }
    }
}
