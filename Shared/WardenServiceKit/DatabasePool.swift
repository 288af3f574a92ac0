import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle

/// A service's pooled PostgreSQL client, measured. PostgresNIO's pool reports what it does only as
/// debug log lines, so every statement and every leased connection goes through here:
/// - `warden_postgres_query_duration_seconds`: a statement on the pool, from asking until
///   PostgreSQL's first answer (waiting for a free connection included);
/// - `warden_postgres_lease_wait_seconds` and `warden_postgres_lease_duration_seconds`: a connection
///   leased for a transaction or a series of statements, waiting for it and holding it;
/// - `warden_postgres_errors_total{class}`: refusals by SQLSTATE class, `connection` when PostgreSQL
///   could not be reached or the connection broke;
/// - `warden_postgres_connections{state}` and `warden_postgres_connections_max`: the pool's open
///   connections as PostgreSQL sees them, read when the metrics are scraped (`recordConnections`).
/// It is a `Service`: run it in the `ServiceGroup` before anything that queries.
public final class DatabasePool: Service, Sendable {
    let client: PostgresClient
    /// The pool's connections' `application_name`: how `pg_stat_activity` tells this instance's from others'.
    let applicationName: String
    let maximumConnections: Int
    let queryDuration: Metrics.Timer
    let leaseWait: Metrics.Timer
    let leaseDuration: Metrics.Timer
    let factory: any MetricsFactory

    init(client: PostgresClient, applicationName: String, maximumConnections: Int, metrics factory: any MetricsFactory) {
        self.client = client
        self.applicationName = applicationName
        self.maximumConnections = maximumConnections
        self.factory = factory
        queryDuration = Metrics.Timer(label: "warden_postgres_query_duration_seconds", factory: factory)
        leaseWait = Metrics.Timer(label: "warden_postgres_lease_wait_seconds", factory: factory)
        leaseDuration = Metrics.Timer(label: "warden_postgres_lease_duration_seconds", factory: factory)
    }

    public func run() async {
        await client.run()
    }

    /// Runs a statement on a pooled connection (released when its rows have been read).
    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger? = nil, file: String = #fileID, line: Int = #line) async throws
        -> PostgresRowSequence
    {
        let started = ContinuousClock.now
        do {
            let rows = try await client.query(query, logger: logger, file: file, line: line)
            queryDuration.record(duration: ContinuousClock.now - started)
            return rows
        } catch {
            queryDuration.record(duration: ContinuousClock.now - started)
            count(error)
            throw error
        }
    }

    /// Runs a prepared statement on a pooled connection (prepared on it the first time).
    public func execute<Statement: PostgresPreparedStatement, Row>(_ statement: Statement, logger: Logger? = nil) async throws
        -> AsyncThrowingMapSequence<PostgresRowSequence, Row> where Row == Statement.Row
    {
        let started = ContinuousClock.now
        do {
            let rows = try await client.execute(statement, logger: logger)
            queryDuration.record(duration: ContinuousClock.now - started)
            return rows
        } catch {
            queryDuration.record(duration: ContinuousClock.now - started)
            count(error)
            throw error
        }
    }

    /// Leases a connection for `body`. `body` must not keep the connection.
    public func withConnection<Result>(
        isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        let asked = ContinuousClock.now
        do {
            return try await client.withConnection(isolation: isolation) { connection in
                let leased = ContinuousClock.now
                leaseWait.record(duration: leased - asked)
                defer { leaseDuration.record(duration: ContinuousClock.now - leased) }
                return try await body(connection)
            }
        } catch {
            count(error)
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

    /// Records this instance's connections by state as PostgreSQL sees them (`pg_stat_activity`;
    /// the reading's own connection counts as active), and the pool's size. When PostgreSQL cannot
    /// say within two seconds, the last values stay.
    package func recordConnections(logger: Logger) async {
        Gauge(label: "warden_postgres_connections_max", factory: factory).record(maximumConnections)
        do {
            let counts = try await withDatabaseDeadline(.seconds(2), operation: "reading the pool's connections") { [self] in
                var counts = Dictionary(uniqueKeysWithValues: Self.stateLabels.map { ($0, 0) })
                let rows = try await query(
                    "SELECT coalesce(state, ''), count(*) FROM pg_stat_activity WHERE application_name = \(applicationName) GROUP BY 1",
                    logger: logger)
                for try await (state, count) in rows.decode((String, Int).self) { counts[Self.stateLabel(state), default: 0] += count }
                return counts
            }
            for (state, count) in counts {
                Gauge(label: "warden_postgres_connections", dimensions: [("state", state)], factory: factory).record(count)
            }
        } catch {
            logger.debug("cannot read the pool's connections", metadata: ["error": "\(ServiceDatabase.describe(error))"])
        }
    }

    /// `pg_stat_activity`'s states as labels (`idle in transaction (aborted)` is `idle_in_transaction_aborted`);
    /// anything else (a state this instance may not see, a fast-path call) is `other`.
    static let stateLabels = ["active", "idle", "idle_in_transaction", "idle_in_transaction_aborted", "other"]

    static func stateLabel(_ state: String) -> String {
        let label = state.replacingOccurrences(of: " ", with: "_").filter { $0 != "(" && $0 != ")" }
        return stateLabels.contains(label) ? label : "other"
    }

    /// Counts a database failure by SQLSTATE class (two characters: a bounded label), or as
    /// `connection` when there is none (PostgreSQL could not be reached, or the connection broke). Errors of the caller's own (thrown in `body`)
    /// are not the database's and are not counted.
    func count(_ error: any Error) {
        let failure: any Error
        if let error = error as? PostgresTransactionError {
            guard let inner = error.commitError ?? error.beginError ?? error.closureError else { return }
            failure = inner
        } else {
            failure = error
        }
        guard let error = failure as? PSQLError else { return }
        let sqlState = error.serverInfo?[.sqlState].map { String($0.prefix(2)) }
        let label = sqlState.flatMap { $0.allSatisfy { $0.isLetter || $0.isNumber } ? $0 : nil } ?? "connection"
        Counter(label: "warden_postgres_errors_total", dimensions: [("class", label)], factory: factory).increment()
    }
}
