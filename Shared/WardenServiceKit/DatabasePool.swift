import Foundation
import Logging
import Metrics
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// A service's pooled PostgreSQL client, measured. PostgresNIO's pool reports what it does only as
/// debug log lines, so every statement and every leased connection goes through here:
/// - `warden_postgres_query_duration_seconds`: a statement on the pool, from asking until
///   PostgreSQL's first answer (waiting for a free connection included);
/// - `warden_postgres_lease_wait_seconds` and `warden_postgres_lease_duration_seconds`: a connection
///   leased for a transaction or a series of statements, waiting for it and holding it;
/// - `warden_postgres_errors_total{class}`: refusals by SQLSTATE class, `connection` when no
///   connection could be had (PostgreSQL unreachable, the pool's connecting given up, a wait for a
///   connection ended) or the connection broke. Refusals raised while a statement's rows are read
///   (after its first answer) are the caller's to see and are not counted;
/// - `warden_postgres_connections{state}` and `warden_postgres_connections_max`: the pool's open
///   connections as PostgreSQL sees them, read when the metrics are scraped (`recordConnections`)
///   over a connection of its own, so that a full pool does not hide itself.
/// It is a `Service`: run it in the `ServiceGroup` before anything that queries.
public final class DatabasePool: Service, Sendable {
    let client: PostgresClient
    /// The event loop every connection of the pool is on, as an executor handlers may prefer.
    package let executor: EventLoopExecutor
    /// The pool's connections' `application_name`: how `pg_stat_activity` tells this instance's from others'.
    let applicationName: String
    let maximumConnections: Int
    let queryDuration: Metrics.Timer
    let leaseWait: Metrics.Timer
    let leaseDuration: Metrics.Timer
    let factory: any MetricsFactory
    /// The connection `recordConnections` reads through (opened when first needed, again after a failure).
    let monitorConfiguration: PostgresConnection.Configuration
    private struct Monitor {
        var connection: PostgresConnection?
        var stopped = false
        var reading = false
        var lastRead: ContinuousClock.Instant?
    }
    private let monitor = Mutex(Monitor())
    let logger: Logger

    init(
        client: PostgresClient, applicationName: String, executor: EventLoopExecutor, maximumConnections: Int,
        monitor: PostgresConnection.Configuration,
        metrics factory: any MetricsFactory, logger: Logger
    ) {
        self.client = client
        self.executor = executor
        self.applicationName = applicationName
        self.maximumConnections = maximumConnections
        self.factory = factory
        self.logger = logger
        var monitor = monitor
        monitor.options.additionalStartupParameters = [("application_name", ServiceDatabase.applicationName("metrics " + applicationName))]
        monitorConfiguration = monitor
        queryDuration = Metrics.Timer(label: "warden_postgres_query_duration_seconds", factory: factory)
        leaseWait = Metrics.Timer(label: "warden_postgres_lease_wait_seconds", factory: factory)
        leaseDuration = Metrics.Timer(label: "warden_postgres_lease_duration_seconds", factory: factory)
        // Present from the start, so that an alert on its increase sees the first failure.
        Counter(label: "warden_postgres_errors_total", dimensions: [("class", "connection")], factory: factory).increment(by: 0)
    }

    public func run() async {
        await client.run()
        let connection = monitor.withLock { monitor in
            defer { (monitor.connection, monitor.stopped) = (nil, true) }
            return monitor.connection
        }
        try? await connection?.close()
    }

    /// Runs a statement on a pooled connection (released when its rows have been read).
    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger? = nil, file: String = #fileID, line: Int = #line) async throws
        -> PostgresRowSequence
    {
        try await timed { try await client.query(query, logger: logger, file: file, line: line) }
    }

    /// Runs a prepared statement on a pooled connection (prepared on it the first time).
    public func execute<Statement: PostgresPreparedStatement, Row>(_ statement: Statement, logger: Logger? = nil) async throws
        -> AsyncThrowingMapSequence<PostgresRowSequence, Row> where Row == Statement.Row
    {
        try await timed { try await client.execute(statement, logger: logger) }
    }

    /// A statement until its first answer: timed, and its failure counted.
    private func timed<Rows>(_ statement: () async throws -> Rows) async throws -> Rows {
        let started = ContinuousClock.now
        defer { queryDuration.record(duration: ContinuousClock.now - started) }
        do {
            return try await statement()
        } catch {
            count(error)
            throw error
        }
    }

    /// Leases a connection for `body`. `body` must not keep the connection.
    public func withConnection<Result>(
        isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        let asked = ContinuousClock.now
        var leased: ContinuousClock.Instant?
        do {
            return try await client.withConnection(isolation: isolation) { connection in
                let start = ContinuousClock.now
                leased = start
                leaseWait.record(duration: start - asked)
                defer { leaseDuration.record(duration: ContinuousClock.now - start) }
                return try await body(connection)
            }
        } catch {
            // Before the lease, the pool's failure; within it, only what PostgreSQL refused.
            if leased == nil { count(error) } else if error is PSQLError || error is PostgresTransactionError { count(error) }
            throw error
        }
    }

    /// Runs `body` in a transaction on a leased connection, committed when it returns and rolled
    /// back when it throws; throws what went wrong itself rather than wrapped, so a typed error
    /// thrown in `body` (a `ServiceError`, a constraint's `PSQLError`) keeps its meaning for the caller.
    public func transaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        do {
            return try await withConnection(isolation: isolation) { connection in
                try await connection.withTransaction(logger: logger, isolation: isolation, body)
            }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.commitError ?? error.beginError ?? error
        }
    }

    /// Records this instance's connections by state as PostgreSQL sees them (`pg_stat_activity`,
    /// read over a connection outside the pool: a full pool is seen, not waited for), and the
    /// pool's size. When PostgreSQL cannot say within two seconds, the counts are set to -1: unknown.
    /// One reading at a time, at most one a second (`/metrics` may be on a public port): a scrape
    /// meanwhile gets the values last read.
    package func recordConnections(logger: Logger) async {
        Gauge(label: "warden_postgres_connections_max", factory: factory).record(maximumConnections)
        let now = ContinuousClock.now
        let due = monitor.withLock { monitor -> Bool in
            guard !monitor.stopped, !monitor.reading, monitor.lastRead.map({ now - $0 >= .seconds(1) }) ?? true else { return false }
            (monitor.reading, monitor.lastRead) = (true, now)
            return true
        }
        guard due else { return }
        defer { monitor.withLock { $0.reading = false } }
        var counts = Dictionary(uniqueKeysWithValues: Self.stateLabels.map { ($0, 0) })
        do {
            let rows = try await withDatabaseDeadline(.seconds(2), operation: "reading the pool's connections") { [self] in
                let connection = try await monitorConnection()
                do {
                    // A query does not end when its task is cancelled; closing the connection ends it.
                    return try await withTaskCancellationHandler {
                        var rows: [(String, Int)] = []
                        for try await row in try await connection.query(
                            "SELECT coalesce(state, ''), count(*) FROM pg_stat_activity WHERE application_name = \(applicationName) GROUP BY 1",
                            logger: logger
                        ).decode((String, Int).self) { rows.append(row) }
                        return rows
                    } onCancel: {
                        connection.close().whenComplete { _ in }
                    }
                } catch {
                    monitor.withLock { if $0.connection === connection { $0.connection = nil } }
                    try? await connection.close()
                    throw error
                }
            }
            for (state, count) in rows { counts[Self.stateLabel(state), default: 0] += count }
        } catch {
            logger.debug("cannot read the pool's connections", metadata: ["error": "\(ServiceDatabase.describe(error))"])
            counts = counts.mapValues { _ in -1 }
        }
        for (state, count) in counts {
            Gauge(label: "warden_postgres_connections", dimensions: [("state", state)], factory: factory).record(count)
        }
    }

    /// The monitor connection, opened if there is none (cancellable: the reading's deadline ends a
    /// connection attempt too). Readings take turns, so one connection at most is opened at a time.
    private func monitorConnection() async throws -> PostgresConnection {
        if let open = monitor.withLock({ $0.connection }), !open.isClosed { return open }
        let opened = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: monitorConfiguration, id: 0, logger: logger)
        let kept = monitor.withLock { monitor -> Bool in
            guard !monitor.stopped else { return false }
            monitor.connection = opened
            return true
        }
        guard kept else {
            try? await opened.close()
            throw CancellationError()
        }
        return opened
    }

    /// `pg_stat_activity`'s states as labels (`idle in transaction (aborted)` is `idle_in_transaction_aborted`);
    /// anything else (a state this instance may not see, a fast-path call) is `other`.
    static let stateLabels = ["active", "idle", "idle_in_transaction", "idle_in_transaction_aborted", "other"]

    static func stateLabel(_ state: String) -> String {
        let label = state.replacingOccurrences(of: " ", with: "_").filter { $0 != "(" && $0 != ")" }
        return stateLabels.contains(label) ? label : "other"
    }

    /// Counts a database failure by SQLSTATE class (two characters: a bounded label), or as
    /// `connection` when there is none (PostgreSQL could not be reached, or the connection broke).
    /// Errors of the caller's own (thrown in a transaction's body: a `ServiceError`) are not the
    /// database's and are not counted.
    func count(_ error: any Error) {
        let failure: any Error
        if let error = error as? PostgresTransactionError {
            if let inner = error.commitError ?? error.beginError {
                failure = inner
            } else if let inner = error.closureError as? PSQLError {
                failure = inner
            } else {
                return
            }
        } else {
            failure = error
        }
        guard let error = failure as? PSQLError else {
            // The pool's own errors: connecting given up, a wait for a connection ended.
            Counter(label: "warden_postgres_errors_total", dimensions: [("class", "connection")], factory: factory).increment()
            return
        }
        let sqlState = error.serverInfo?[.sqlState].map { String($0.prefix(2)) }
        let label = sqlState.flatMap { $0.allSatisfy { $0.isLetter || $0.isNumber } ? $0 : nil } ?? "connection"
        Counter(label: "warden_postgres_errors_total", dimensions: [("class", label)], factory: factory).increment()
    }
}
