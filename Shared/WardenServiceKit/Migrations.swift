import Crypto
import Foundation
import Logging
import PostgresNIO
import WardenContracts

/// One step of a service's schema. Applied once, in version order, inside a transaction.
/// Never edit an applied migration: its checksum is recorded and a changed one stops the service.
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    /// Statements run in order. Write unqualified names: the search path is the service's schema.
    public var statements: [String]

    public init(version: Int, name: String, statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }

    /// SHA-256 of the statements, recorded when applied.
    public var checksum: String {
        let digest = SHA256.hash(data: Data(statements.joined(separator: "\n;\n").utf8))
        return digest.map { String(format: "%02x", $0) }.joined()
    }
}

/// Why migrations cannot run.
public struct MigrationError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Decides what to apply, without I/O.
public enum MigrationPlan {
    /// The migrations still to apply, in order. Throws when the list is malformed, or when an applied
    /// migration was changed or is unknown to this build (a newer version ran against this database).
    public static func pending(_ migrations: [Migration], applied: [Int: String]) throws(MigrationError) -> [Migration] {
        let sorted = migrations.sorted { $0.version < $1.version }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.version == next.version {
            throw MigrationError("migration version \(next.version) is defined twice")
        }
        if let bad = sorted.first(where: { $0.version <= 0 }) {
            throw MigrationError("migration version \(bad.version) must be positive")
        }
        let known = Dictionary(uniqueKeysWithValues: sorted.map { ($0.version, $0) })
        for (version, checksum) in applied.sorted(by: { $0.key < $1.key }) {
            guard let migration = known[version] else {
                throw MigrationError("the database has migration \(version), which this build does not know: is a newer version running?")
            }
            guard migration.checksum == checksum else {
                throw MigrationError("migration \(version) (\(migration.name)) changed after it was applied")
            }
        }
        return sorted.filter { applied[$0.version] == nil }
    }
}

/// Applies a service's migrations to its schema under a transaction-scoped advisory lock, so that
/// replicas starting together apply each migration exactly once and the others wait, then find nothing to do.
public struct MigrationRunner: Sendable {
    public let schema: String
    public let migrations: [Migration]

    public init(schema: String, migrations: [Migration]) {
        precondition(schema.allSatisfy { $0.isLowercase || $0 == "_" }, "schema names are lower-case identifiers")
        self.schema = schema
        self.migrations = migrations
    }

    /// Returns the versions applied by this call (empty when already up to date).
    @discardableResult
    public func run(on client: DatabasePool, logger: Logger) async throws -> [Int] {
        let schema = self.schema
        let migrations = self.migrations
        return try await client.transaction(logger: logger) { connection -> [Int] in
            let exists =
                try await connection.query("SELECT 1 FROM pg_namespace WHERE nspname = \(schema)", logger: logger)
                .collect().isEmpty == false
            guard exists else {
                throw MigrationError("schema '\(schema)' does not exist: provision the database first (scripts/provision-postgres.sh)")
            }
            try await connection.advisoryTransactionLock("warden.migrations." + schema, logger: logger)
            try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL search_path TO \(schema)"), logger: logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        CREATE TABLE IF NOT EXISTS \(schema).schema_migrations (
                            version integer PRIMARY KEY,
                            name text NOT NULL,
                            checksum text NOT NULL,
                            applied_at timestamptz NOT NULL DEFAULT now()
                        )
                        """),
                logger: logger
            )
            var applied: [Int: String] = [:]
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT version, checksum FROM \(schema).schema_migrations"), logger: logger)
            for try await (version, checksum) in rows.decode((Int, String).self) { applied[version] = checksum }
            let pending = try MigrationPlan.pending(migrations, applied: applied)
            for migration in pending {
                logger.info("applying migration", metadata: ["db.schema": "\(schema)", "db.migration": "\(migration.version) \(migration.name)"])
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO \(unescaped: schema).schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))",
                    logger: logger
                )
            }
            return pending.map(\.version)
        }
    }
}
