import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import WardenServiceKit

/// What one prepared statement costs through PostgresNIO, against PostgreSQL answering it (compare
/// with `pgbench -M prepared` on the same query): a service's pool as configured, the same pool
/// with the request's task on the pool's event loop, and one connection without a pool.
struct PostgresQueryBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres-query", abstract: "One prepared statement through PostgresNIO, several ways.")

    @Option var host = "127.0.0.1"
    @Option var port: Int
    @Option var user: String
    @Option var password: String
    @Option var database: String
    @Option(help: "Statements measured per way (after a warm-up), in alternating rounds.") var requests = 20_000

    struct Probe: PostgresPreparedStatement {
        typealias Row = (Int, String)
        static let sql = "SELECT n, label FROM warden_bench_probe WHERE n = $1"
        static let bindingDataTypes: [PostgresDataType] = [.int8]
        var n: Int
        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(n)
            return bindings
        }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    func run() async throws {
        guard requests >= 10 else { throw ValidationError("measure at least 10 statements") }
        let logger = Logger(label: "bench")
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        func configuration(keepAlive: Bool, minimum: Int) -> PostgresClient.Configuration {
            var configuration = PostgresClient.Configuration(
                host: host, port: port, username: user, password: password, database: database, tls: .disable)
            if !keepAlive { configuration.options.keepAliveBehavior = nil }
            configuration.options.minimumConnections = minimum
            return configuration
        }
        let pooled = PostgresClient(configuration: configuration(keepAlive: true, minimum: 0), eventLoopGroup: loop, backgroundLogger: logger)
        let quiet = PostgresClient(configuration: configuration(keepAlive: false, minimum: 1), eventLoopGroup: loop, backgroundLogger: logger)
        let kept = PostgresClient(configuration: configuration(keepAlive: true, minimum: 1), eventLoopGroup: loop, backgroundLogger: logger)
        let unkept = PostgresClient(configuration: configuration(keepAlive: false, minimum: 0), eventLoopGroup: loop, backgroundLogger: logger)
        let executor = EventLoopExecutor(loop)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await pooled.run() }
            group.addTask { await quiet.run() }
            group.addTask { await kept.run() }
            group.addTask { await unkept.run() }
            let single = try await PostgresConnection.connect(
                on: loop,
                configuration: .init(host: host, port: port, username: user, password: password, database: database, tls: .disable),
                id: 1, logger: logger)
            try await single.query("CREATE TABLE IF NOT EXISTS warden_bench_probe (n bigint PRIMARY KEY, label text)", logger: logger)
            try await single.query(
                "INSERT INTO warden_bench_probe SELECT g, 'label ' || g FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING", logger: logger)
            let ways: [(String, @Sendable () async throws -> Void)] = [
                (
                    "pool (keep-alive and idle timers, as by default), task on Swift's pool",
                    {
                        for try await _ in try await pooled.execute(Probe(n: 7)) {}
                    }
                ),
                (
                    "the same pool, task on the pool's event loop",
                    {
                        try await withTaskExecutorPreference(executor) { for try await _ in try await pooled.execute(Probe(n: 7)) {} }
                    }
                ),
                (
                    "pool without keep-alive, one lasting connection, task on the event loop",
                    {
                        try await withTaskExecutorPreference(executor) { for try await _ in try await quiet.execute(Probe(n: 7)) {} }
                    }
                ),
                (
                    "pool with keep-alive, one lasting connection, task on the event loop",
                    {
                        try await withTaskExecutorPreference(executor) { for try await _ in try await kept.execute(Probe(n: 7)) {} }
                    }
                ),
                (
                    "pool without keep-alive, connections opened on demand, task on the event loop",
                    {
                        try await withTaskExecutorPreference(executor) { for try await _ in try await unkept.execute(Probe(n: 7)) {} }
                    }
                ),
                (
                    "one connection, no pool, task on its event loop",
                    {
                        try await withTaskExecutorPreference(executor) { for try await _ in try await single.execute(Probe(n: 7), logger: logger) {} }
                    }
                ),
            ]
            var samples = Array(repeating: [Duration](), count: ways.count)
            for (_, way) in ways { for _ in 0..<500 { try await way() } }
            let clock = ContinuousClock()
            let rounds = 10
            for _ in 0..<rounds {
                for (index, (_, way)) in ways.enumerated() {
                    for _ in 0..<(requests / rounds) {
                        let start = clock.now
                        try await way()
                        samples[index].append(clock.now - start)
                    }
                }
            }
            for (index, (name, _)) in ways.enumerated() {
                let sorted = samples[index].sorted()
                print("\(name): p50 \(BenchSupport.percentile(sorted, 0.5)), p90 \(BenchSupport.percentile(sorted, 0.9))")
            }
            try await single.query("DROP TABLE warden_bench_probe", logger: logger)
            try await single.close()
            group.cancelAll()
        }
    }
}
