import Foundation

/// Gateways measured in alternating rounds, so that the machine's drift falls on all of them alike.
/// First `latencyRounds` rounds of a sequential p50 each; then `throughputRounds` rounds in which
/// every gateway gets one window of the proxy's concurrency and duration, then `settle` of quiet
/// (for work a window leaves behind — a tracer's export — to fall in it, not in the next gateway's
/// window), then its CPU time per call is read (when its process id is known). The rounds take the
/// gateways' orders in turn (every permutation, so that each pair is measured as often one way
/// round as the other); short windows in many rounds leave the machine less time to drift between
/// the windows a comparison pairs.
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

    struct Result {
        /// Each gateway's medians, in the order given.
        let medians: [Medians]
        /// `rates[gateway][round]`: calls per second in that round's window.
        let rates: [[Double]]

        /// How much less `gateway` achieved than `baseline`, round by round (the two windows of a
        /// round are at most a window or two apart).
        func cost(of gateway: Int, against baseline: Int) -> (median: Double, lower: Double, upper: Double) {
            AlternatingGateways.cost(rates, of: gateway, against: baseline)
        }
    }

    let proxy: ProxyBenchmark
    let latencyRounds: Int
    let throughputRounds: Int
    let settle: Duration

    init(proxy: ProxyBenchmark, latencyRounds: Int, throughputRounds: Int? = nil, settle: Duration = .zero) {
        self.proxy = proxy
        self.latencyRounds = max(1, latencyRounds)
        self.throughputRounds = max(1, throughputRounds ?? latencyRounds)
        self.settle = settle
    }

    /// Prints a line per p50 measurement and per throughput round.
    /// Gateways that each post `tool` to their URL, in the order given; their CPU is read when a
    /// process id is given for every one of them.
    func gateways(_ endpoints: [(label: String, url: String)], tool: String, token: String? = nil, pids: [Int32]) async throws -> [Gateway] {
        var gateways: [Gateway] = []
        for (index, endpoint) in endpoints.enumerated() {
            gateways.append(
                Gateway(
                    label: endpoint.label, operation: try await proxy.poster(endpoint.url, tool: tool, token: token),
                    pid: pids.count == endpoints.count ? pids[index] : nil))
        }
        return gateways
    }

    func run(_ gateways: [Gateway]) async throws -> Result {
        var p50s = Array(repeating: [Duration](), count: gateways.count)
        for round in 0..<latencyRounds {
            for index in Self.order(round: round, count: gateways.count) {
                let latency = try await proxy.sequential(gateways[index].operation)
                p50s[index].append(latency.p50)
                print("p50 round \(round + 1), \(gateways[index].label): \(ObservabilityBenchmark.ms(latency.p50))")
            }
        }
        var rates = Array(repeating: [Double](), count: gateways.count)
        var cpus = Array(repeating: [Double](), count: gateways.count)
        for round in 0..<throughputRounds {
            var line: [String] = []
            for index in Self.order(round: round, count: gateways.count) {
                let gateway = gateways[index]
                let before = gateway.pid.flatMap(ObservabilityBenchmark.cpuSeconds)
                let rate = try await proxy.throughput(gateway.operation)
                try await Task.sleep(for: settle)
                let cpu = before.flatMap { start in
                    gateway.pid.flatMap(ObservabilityBenchmark.cpuSeconds).map { ($0 - start) / (rate * Double(proxy.seconds)) * 1e6 }
                }
                rates[index].append(rate)
                if let cpu { cpus[index].append(cpu) }
                line.append("\(gateway.label) \(Int(rate))" + (cpu.map { String(format: " (%.0f µs)", $0) } ?? ""))
            }
            print("round \(round + 1), calls/s at \(proxy.concurrency) in flight (gateway CPU a call): " + line.joined(separator: ", "))
        }
        let medians = gateways.indices.map { index in
            Medians(
                rate: Self.median(rates[index]), p50: p50s[index].sorted()[latencyRounds / 2],
                cpu: cpus[index].count == throughputRounds ? Self.median(cpus[index]) : nil)
        }
        return Result(medians: medians, rates: rates)
    }

    /// The gateways' order in a round: the permutations of `0..<count` in turn, in lexicographic
    /// order (six for three gateways).
    static func order(round: Int, count: Int) -> [Int] {
        var remaining = Array(0..<count)
        var rank = round % (1...max(1, count)).reduce(1, *)
        var order: [Int] = []
        while !remaining.isEmpty {
            let block = (1..<max(1, remaining.count)).reduce(1, *)
            order.append(remaining.remove(at: rank / block))
            rank %= block
        }
        return order
    }

    /// How much less `gateway` achieved than `baseline` window by window (`rates[gateway][window]`),
    /// as a fraction of the baseline's rate: the median, and the lower and upper quartiles.
    static func cost(_ rates: [[Double]], of gateway: Int, against baseline: Int) -> (median: Double, lower: Double, upper: Double) {
        let costs = zip(rates[gateway], rates[baseline]).map { 1 - $0 / $1 }.sorted()
        return (costs[costs.count / 2], costs[costs.count / 4], costs[costs.count * 3 / 4])
    }

    static func median(_ values: [Double]) -> Double {
        values.sorted()[values.count / 2]
    }
}
