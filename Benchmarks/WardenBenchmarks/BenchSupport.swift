import ArgumentParser
import Foundation
import Logging
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
