import Foundation
import PostgresNIO
import Prometheus
import Testing
import WardenContracts
import WardenGateway
import WardenPolicy
import WardenPolicyEngine
import WardenServiceKit

/// Migrations and schema isolation on a real PostgreSQL.
@Suite struct DatabaseTests {
    let migrations = [
        PlatformMigrations.instances,
        Migration(version: 2, name: "things", statements: ["CREATE TABLE things (id int PRIMARY KEY)", "INSERT INTO things VALUES (1)"]),
    ]

    /// Every connection of a service's pool is on one event loop, and a task preferring the pool's
    /// executor (as the vault's reads and policy's decisions do) is back on that loop after each
    /// statement: no hand-over between threads while a request waits for PostgreSQL.
    @Test func thePoolsConnectionsShareTheEventLoopItsExecutorRunsOn() async throws {
        let database = try await TestDatabase.create()
        var logger = TestEnvironment.logger
        logger.logLevel = .error
        let pool = try ServiceDatabase.makeClient(try database.settings(for: .policy), logger: logger)
        let loop = pool.executor.eventLoop
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            defer { group.cancelAll() }
            // Three connections at once, so the pool opens three.
            let sameLoop = try await pool.withConnection { first in
                try await pool.withConnection { second in
                    try await pool.withConnection { third in [first, second, third].map { $0.eventLoop === loop } }
                }
            }
            #expect(sameLoop == [true, true, true])
            let resumedOnLoop = try await withTaskExecutorPreference(pool.executor) {
                var resumed: [Bool] = []
                for _ in 0..<3 {
                    try await pool.query("SELECT 1", logger: logger)
                    resumed.append(loop.inEventLoop)
                }
                return resumed
            }
            #expect(resumedOnLoop == [true, true, true])
        }
    }

    /// The pool measures what it does: statements, leased connections (waiting and holding),
    /// refusals by SQLSTATE class, and its connections by state as PostgreSQL sees them, told apart
    /// from another pool's of the same role by their application name, and read even when every
    /// connection of the pool is taken.
    @Test func thePoolMeasuresStatementsLeasesRefusalsAndConnections() async throws {
        let database = try await TestDatabase.create()
        let registry = PrometheusCollectorRegistry()
        let logger = {
            var logger = TestEnvironment.logger
            logger.logLevel = .error
            return logger
        }()
        var settings = try database.settings(for: .policy)
        settings.maxConnections = 1
        let pool = try ServiceDatabase.makeClient(
            settings, applicationName: "warden-test/\(UUID().uuidString.prefix(8))", logger: logger,
            metrics: WardenMetrics.factory(registry: registry))
        // Another instance of the same role, busy at the same time: not counted as this pool's.
        try await withDatabaseClient(database, as: .policy) { other in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await pool.run() }
                defer { group.cancelAll() }
                for _ in 0..<5 { try await pool.query("SELECT 1", logger: logger) }
                await #expect(throws: PSQLError.self) { try await pool.query("SELECT * FROM no_such_table", logger: logger) }
                try await pool.transaction(logger: logger) { connection in try await connection.query("SELECT 1", logger: logger) }
                // The caller's own error in a transaction is not the database's.
                await #expect(throws: ServiceError.self) {
                    try await pool.transaction(logger: logger) { _ in throw ServiceError(.notFound, "no such thing") }
                }
                try await other.withConnection { elsewhere in
                    try await elsewhere.query("BEGIN", logger: logger)
                    // The pool's only connection idle in a transaction while the metrics are read.
                    try await pool.withConnection { connection in
                        try await connection.query("BEGIN", logger: logger)
                        await pool.recordConnections(logger: logger)
                        try await connection.query("ROLLBACK", logger: logger)
                    }
                    try await elsewhere.query("ROLLBACK", logger: logger)
                }
                return 0
            }
        }
        let text = registry.emitToString()
        func sample(_ series: String) -> Double? { ObservabilityTests().sample(text, series) }
        #expect(sample("warden_postgres_query_duration_seconds_count") == 6, "five statements and the refused one: \(text)")
        #expect(sample(#"warden_postgres_errors_total{class="42"}"#) == 1, "a missing table is SQLSTATE 42P01")
        #expect(sample(#"warden_postgres_errors_total{class="connection"}"#) == 0)
        #expect(sample("warden_postgres_lease_wait_seconds_count") == 3)
        #expect(sample("warden_postgres_lease_duration_seconds_count") == 3)
        #expect(sample(#"warden_postgres_connections{state="idle_in_transaction"}"#) == 1, "\(text)")
        #expect(sample(#"warden_postgres_connections{state="active"}"#) == 0, "the reading's own connection is not the pool's")
        #expect(sample("warden_postgres_connections_max") == 1)
    }

    /// PostgreSQL keeps 63 bytes of a connection's name: a longer one keeps its end (an instance
    /// id's random suffix), so replicas never count each other's connections.
    @Test func applicationNamesFitAndKeepTheirEnd() {
        #expect(ServiceDatabase.applicationName("warden-vault/host-1x2y3z") == "warden-vault/host-1x2y3z")
        let long = ServiceDatabase.applicationName("warden-approvals/" + String(repeating: "h", count: 80) + "-k3j9x1")
        #expect(long.utf8.count == 63 && long.hasPrefix("warden-approvals/") && long.hasSuffix("-k3j9x1"))
        #expect(ServiceDatabase.applicationName("warden-é\u{7}x") == "warden-x")
    }

    /// A pool that cannot reach PostgreSQL says so: the failed statement counts as a connection
    /// failure and its connections are unknown (-1), not the last values read.
    @Test func aPoolThatCannotConnectCountsItAndReportsItsConnectionsUnknown() async throws {
        let registry = PrometheusCollectorRegistry()
        let logger = {
            var logger = TestEnvironment.logger
            logger.logLevel = .critical
            return logger
        }()
        let nowhere = ServiceConfiguration.DatabaseSettings(host: "127.0.0.1", port: freePort(), database: "none", user: "none", password: "x")
        let pool = try ServiceDatabase.makeClient(nowhere, logger: logger, metrics: WardenMetrics.factory(registry: registry))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await pool.run() }
            defer { group.cancelAll() }
            await #expect(throws: DatabaseTimeout.self) {
                try await withDatabaseDeadline(.seconds(1), operation: "a statement") { try await pool.query("SELECT 1", logger: logger) }
            }
            await pool.recordConnections(logger: logger)
        }
        let text = registry.emitToString()
        func sample(_ series: String) -> Double? { ObservabilityTests().sample(text, series) }
        #expect(sample(#"warden_postgres_errors_total{class="connection"}"#) == 1, "\(text)")
        #expect(sample(#"warden_postgres_connections{state="active"}"#) == -1, "\(text)")
    }

    @Test func migrationsRunTwiceAreANoOp() async throws {
        let database = try await TestDatabase.create()
        let migrations = self.migrations
        try await withDatabaseClient(database, as: .policy) { client in
            let runner = MigrationRunner(schema: "policy", migrations: migrations)
            #expect(try await runner.run(on: client, logger: TestEnvironment.logger) == [1, 2])
            #expect(try await runner.run(on: client, logger: TestEnvironment.logger) == [])
            let rows = try await client.query("SELECT count(*)::int FROM policy.things").collect()
            #expect(try rows.first?.decode(Int.self) == 1)
        }
    }

    @Test func replicasMigratingTogetherApplyEachMigrationOnce() async throws {
        let database = try await TestDatabase.create()
        let migrations = self.migrations
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await withDatabaseClient(database, as: .vault) { client in
                        try await MigrationRunner(schema: "vault", migrations: migrations).run(on: client, logger: TestEnvironment.logger)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(applied.filter { !$0.isEmpty } == [[1, 2]], "exactly one replica applied the migrations: \(applied)")
    }

    @Test func orgsThatExistedBeforePoliciesKeepEveryToolPromptAndResourceAndNewOrgsGetNone() async throws {
        let database = try await TestDatabase.create()
        try await withDatabaseClient(database, as: .policy) { client in
            let policies = try #require(PolicyService.migrations.firstIndex { $0.name == "policy_documents" })
            _ = try await MigrationRunner(schema: "policy", migrations: Array(PolicyService.migrations[..<policies])).run(
                on: client, logger: TestEnvironment.logger)
            try await client.query("INSERT INTO policy.orgs (id, name) VALUES ('old-org', 'Old')", logger: TestEnvironment.logger)
            _ = try await MigrationRunner(schema: "policy", migrations: PolicyService.migrations).run(on: client, logger: TestEnvironment.logger)
            try await client.query("INSERT INTO policy.orgs (id, name) VALUES ('new-org', 'New')", logger: TestEnvironment.logger)
            let rows = try await client.query(
                "SELECT org, version, document, applied_by FROM policy.policy_documents ORDER BY version", logger: TestEnvironment.logger)
            var documents: [(String, Int, String, String)] = []
            for try await row in rows.decode((String, Int, String, String).self) { documents.append(row) }
            #expect(documents.map(\.0) == ["old-org", "old-org"] && documents.map(\.1) == [1, 2] && documents.allSatisfy { $0.3 == "upgrade" })
            let engine = PolicyEngine(admin: try PolicyDocument(yaml: try #require(documents.last?.2)))
            for (kind, name) in [(ItemKind.tool, "any__tool"), (.prompt, "any__prompt"), (.resource, "any+file:///a")] {
                var input = DecisionInput(org: "old-org", agent: "a", agentClass: "default", user: "u", tool: name)
                input.kind = kind
                #expect(engine.decide(input).outcome == .allow, "the upgraded org keeps every exposed \(kind)")
            }
        }
    }

    @Test func deploymentsWithServersTrustToolsOnFirstUseAndNewOnesHoldThemForApproval() async throws {
        for withServers in [true, false] {
            let database = try await TestDatabase.create()
            try await withDatabaseClient(database, as: .gateway) { client in
                let pins = try #require(GatewayService.migrations.firstIndex { $0.name == "tool_pins" })
                _ = try await MigrationRunner(schema: "gateway", migrations: Array(GatewayService.migrations[..<pins])).run(
                    on: client, logger: TestEnvironment.logger)
                if withServers {
                    try await client.query(
                        #"INSERT INTO gateway.mcp_servers (id, definition) VALUES ('old', '{"id": "old", "command": "x"}')"#,
                        logger: TestEnvironment.logger)
                }
                _ = try await MigrationRunner(schema: "gateway", migrations: GatewayService.migrations).run(
                    on: client, logger: TestEnvironment.logger)
                let store = ToolPinStore(database: client, logger: TestEnvironment.logger)
                #expect(try await store.trust("any-org") == (withServers ? .firstUse : .approval))
            }
        }
    }

    @Test func aServiceCannotReadAnotherServicesSchema() async throws {
        let database = try await TestDatabase.create()
        let migrations = self.migrations
        _ = try await withDatabaseClient(database, as: .vault) { client in
            try await MigrationRunner(schema: "vault", migrations: migrations).run(on: client, logger: TestEnvironment.logger)
        }
        try await withDatabaseClient(database, as: .policy) { client in
            await #expect {
                try await client.query("SELECT * FROM vault.things").collect()
            } throws: { error in
                (error as? PSQLError)?.serverInfo?[.sqlState] == "42501"
            }
            // Nor create objects outside its own schema.
            await #expect {
                try await client.query("CREATE TABLE public.sneaky (x int)").collect()
            } throws: { error in
                (error as? PSQLError)?.serverInfo?[.sqlState] == "42501"
            }
        }
    }

    @Test func missingSchemaIsExplained() async throws {
        let database = try await TestDatabase.create()
        _ = try await withDatabaseClient(database, as: .audit) { client in
            await #expect {
                try await MigrationRunner(schema: "nosuchschema", migrations: []).run(on: client, logger: TestEnvironment.logger)
            } throws: { "\($0)".contains("provision the database first") }
        }
    }
}
