import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import WardenContracts

/// Brings the instance's schema up to date, retrying while PostgreSQL is not reachable yet, then
/// opens the start-up gate. Gives up (and so stops the process with a named cause) after the
/// configured start-up timeout, or at once when the cause will not go away by waiting.
struct StartupService: Service {
    let runner: MigrationRunner
    let database: DatabasePool
    let settings: ServiceConfiguration.DatabaseSettings
    let health: HealthState
    let gate: StartupGate
    let timeout: Duration
    let logger: Logger

    func run() async throws {
        let deadline = ContinuousClock.now + timeout
        var delay = Duration.milliseconds(200)
        while true {
            do {
                // One direct connection first: it fails at once, with the server's reason.
                try await ServiceDatabase.probe(settings, logger: logger)
                let remaining = max(deadline - ContinuousClock.now, .seconds(5))
                let applied = try await withDatabaseDeadline(min(remaining, .seconds(60)), operation: "applying migrations") {
                    [runner, database, logger] in
                    try await runner.run(on: database, logger: logger)
                }
                try await recordInstance()
                health.set("migrations", ok: true)
                logger.info("schema ready", metadata: ["db.schema": "\(runner.schema)", "db.applied": "\(applied)"])
                gate.open()
                break
            } catch let error as MigrationError {
                health.set("migrations", ok: false, detail: error.description)
                throw StartupError("cannot migrate schema '\(runner.schema)': \(error.description)")
            } catch {
                let reason = ServiceDatabase.describe(error)
                health.set("migrations", ok: false, detail: reason)
                if Self.isPermanent(error) {
                    throw StartupError("cannot use PostgreSQL: \(reason)")
                }
                guard ContinuousClock.now + delay < deadline, !Task.isShuttingDownGracefully else {
                    throw StartupError("PostgreSQL not reachable after \(timeout): \(reason)")
                }
                logger.warning("waiting for PostgreSQL", metadata: ["reason": "\(reason)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
        // Nothing more to do; stay alive so the group does not treat this as an early exit.
        try? await gracefulShutdown()
    }

    private func recordInstance() async throws {
        let query: PostgresQuery = """
            INSERT INTO \(unescaped: runner.schema).service_instances (instance_id, version) VALUES (\(health.instanceID), \(health.version))
            ON CONFLICT (instance_id) DO UPDATE SET version = EXCLUDED.version, started_at = now()
            """
        try await withDatabaseDeadline(.seconds(10), operation: "recording the instance") { [database, logger] in
            try await database.query(query, logger: logger).collect().count
        }
    }

    /// Errors that waiting will not fix: bad credentials, missing database or privileges.
    static func isPermanent(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState] else { return false }
        // 28xxx invalid authorization, 3D000 no such database, 42501 insufficient privilege.
        return state.hasPrefix("28") || state == "3D000" || state == "42501"
    }
}

/// A start-up failure with an operator-readable cause; the process exits non-zero with it.
public struct StartupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
