import ArgumentParser
import Foundation
import Logging
import WardenContracts
import WardenNATS

/// What the benchmarks share: a NATS connection, percentiles, and a timed run with many in flight.
enum BenchSupport {
    /// - Parameter inboxScope: whose inboxes replies come to (`gateway` to read secret values, as
    ///   the gateway does; the benchmark's NATS has no users).
    static func connect(_ url: String, name: String, noRespondersRetryWindow: Duration = .seconds(30), inboxScope: String? = nil) async throws
        -> NATSConnection
    {
        var configuration = NATSConnection.Configuration(servers: [url], name: name)
        configuration.noRespondersRetryWindow = noRespondersRetryWindow
        configuration.inboxScope = inboxScope
        let connection = try NATSConnection(configuration: configuration, logger: Logger(label: "bench"))
        guard await connection.waitUntilConnected(timeout: .seconds(5)) else { throw ValidationError("cannot connect to \(url)") }
        return connection
    }

    /// `p` of sorted `samples`, in milliseconds.
    static func percentile(_ samples: [Duration], _ p: Double) -> String {
        let value = samples[min(samples.count - 1, Int(Double(samples.count) * p))]
        return String(format: "%.3f ms", Double(value.components.attoseconds) / 1e15 + Double(value.components.seconds) * 1e3)
    }

    /// Runs `body` beside a bare request/reply: a `warden-bench nats-responder` child (stopped when
    /// `body` returns) answers `bench.echo` as cheaply as NATS allows, so that a run can say what a
    /// request costs beyond the bus on that machine at that minute (these machines are noisy).
    static func withBareEcho<T>(_ connection: NATSConnection, url: String, _ body: (_ echo: () async throws -> Void) async throws -> T)
        async throws -> T
    {
        let responder = Process()
        responder.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        responder.arguments = ["nats-responder", "--url", url]
        try responder.run()
        defer {
            responder.terminate()
            responder.waitUntilExit()
        }
        let payload = try EnvelopeCoding.encode(RequestEnvelope(BenchPayload(id: 1, tool: "github_create_issue")))
        let echo = { _ = try await connection.request(benchEndpoint, payload: payload, timeout: .seconds(10)) }
        try await echo()  // the responder has subscribed
        return try await body(echo)
    }

    /// `count` sequential samples of `measured` and as many of `baseline`, in alternating rounds,
    /// so that the machine's drift falls on both alike.
    static func alternating(
        _ count: Int, rounds: Int = 10, _ measured: (_ index: Int) async throws -> Void, baseline: () async throws -> Void
    ) async throws -> (measured: [Duration], baseline: [Duration]) {
        guard count >= rounds else { throw ValidationError("measure at least \(rounds) requests") }
        let clock = ContinuousClock()
        var samples: ([Duration], [Duration]) = ([], [])
        for round in 0..<rounds {
            for index in 0..<(count / rounds) {
                let start = clock.now
                try await measured(round * (count / rounds) + index)
                samples.0.append(clock.now - start)
            }
            for _ in 0..<(count / rounds) {
                let start = clock.now
                try await baseline()
                samples.1.append(clock.now - start)
            }
        }
        return (samples.0.sorted(), samples.1.sorted())
    }

    /// Runs `operation` from `concurrency` workers for `seconds`; returns how many completed.
    static func throughput(concurrency: Int, seconds: Int, _ operation: @escaping @Sendable (_ worker: Int, _ count: Int) async throws -> Void)
        async throws -> Int
    {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(seconds)
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var count = 0
                    while clock.now < deadline {
                        try await operation(worker, count)
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
    }
}
