import Foundation
import Logging
import Metrics
import NIOPosix
import NIOSSL
import PostgresNIO
import WardenContracts

/// The PostgreSQL side of a service: a pooled client for its own role, and its migrations.
public enum ServiceDatabase {
    /// A pooled client, measured, whose connections carry `applicationName` (what `pg_stat_activity`
    /// shows; PostgreSQL keeps 63 bytes of it). It is a `Service`: run it in the `ServiceGroup`
    /// before anything that queries.
    public static func makeClient(
        _ settings: ServiceConfiguration.DatabaseSettings, applicationName: String = "warden", logger: Logger,
        metrics: any MetricsFactory = MetricsSystem.factory
    ) throws -> DatabasePool {
        var configuration: PostgresClient.Configuration
        if settings.host.hasPrefix("/") {
            let socket = "\(settings.host)/.s.PGSQL.\(settings.port)"
            configuration = .init(unixSocketPath: socket, username: settings.user, password: settings.password, database: settings.database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch settings.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(.makeClientConfiguration())
            case .require: tls = .require(.makeClientConfiguration())
            }
            configuration = .init(
                host: settings.host, port: settings.port, username: settings.user, password: settings.password, database: settings.database, tls: tls)
        }
        configuration.options.maximumConnections = settings.maxConnections
        configuration.options.connectTimeout = .seconds(5)
        let name = Self.applicationName(applicationName)
        configuration.options.additionalStartupParameters = [("application_name", name)]
        // Every connection on one event loop, which a hot endpoint's handler may prefer
        // (`DatabasePool.executor`): its statements are then written and answered without a thread
        // hand-over. One loop handles PostgreSQL's protocol for the whole service (a few µs a
        // statement); handlers that prefer it must be short, and move long work elsewhere.
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        return DatabasePool(
            client: PostgresClient(configuration: configuration, eventLoopGroup: eventLoop, backgroundLogger: logger), applicationName: name,
            executor: EventLoopExecutor(eventLoop),
            maximumConnections: settings.maxConnections, monitor: try connectionConfiguration(settings), metrics: metrics, logger: logger)
    }

    /// `name` as PostgreSQL keeps it: printable ASCII, at most 63 bytes. A longer name keeps its
    /// start and its end (an instance id's random suffix, which tells replicas apart).
    package static func applicationName(_ name: String) -> String {
        let printable = String(String.UnicodeScalarView(name.unicodeScalars.filter { $0.isASCII && $0.value >= 32 && $0.value < 127 }))
        guard printable.utf8.count > 63 else { return printable }
        return String(printable.prefix(31)) + "~" + String(printable.suffix(31))
    }

    /// Settings for one connection outside a pool.
    static func connectionConfiguration(_ settings: ServiceConfiguration.DatabaseSettings) throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if settings.host.hasPrefix("/") {
            configuration = .init(
                unixSocketPath: "\(settings.host)/.s.PGSQL.\(settings.port)", username: settings.user, password: settings.password,
                database: settings.database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch settings.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            configuration = .init(
                host: settings.host, port: settings.port, username: settings.user, password: settings.password, database: settings.database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// Opens and closes one connection, to learn at once whether the database is usable and, if not,
    /// why (the pool would keep retrying quietly). Throws the connection's error.
    public static func probe(_ settings: ServiceConfiguration.DatabaseSettings, logger: Logger) async throws {
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(),
            configuration: try connectionConfiguration(settings),
            id: 0,
            logger: logger
        ).get()
        try? await connection.close()
    }

    /// An operator-readable reason for a database failure: the server's message or the connection
    /// problem, never the query text or its bindings.
    public static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let code = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return message + code
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        if let error = error as? DatabaseTimeout { return error.description }
        return "\(error)"
    }
}

/// A database call that did not finish in time.
public struct DatabaseTimeout: Error, CustomStringConvertible {
    public var operation: String
    public var description: String { "\(operation) timed out" }
}

/// Runs `body`, giving up after `timeout` (the pool would otherwise wait for a connection forever
/// while the database is down).
@discardableResult
public func withDatabaseDeadline<T: Sendable>(
    _ timeout: Duration,
    operation: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DatabaseTimeout(operation: operation) }
        return value
    }
}

extension PostgresConnection {
    /// Holds the advisory lock `name` until the transaction ends: replicas racing to create a first
    /// thing (a signing key, the bootstrap org) take turns, and only the first finds nothing there.
    public func advisoryTransactionLock(_ name: String, logger: Logger) async throws {
        try await query("SELECT pg_advisory_xact_lock(hashtext(\(name)))", logger: logger)
    }

    /// The number a `SELECT count(*) …` answers.
    public func count(_ query: PostgresQuery, logger: Logger) async throws -> Int {
        var count = 0
        for try await value in try await self.query(query, logger: logger).decode(Int.self) { count = value }
        return count
    }
}
