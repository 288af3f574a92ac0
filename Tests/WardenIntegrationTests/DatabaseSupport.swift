import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// A fresh database in the test PostgreSQL, provisioned by the same script `make up`, compose and
/// Kubernetes use (roles and one schema per service).
struct TestDatabase {
    let name: String

    static func create() async throws -> TestDatabase {
        let name = "t_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        let script = try TestEnvironment.repository.appendingPathComponent("scripts/postgres/provision.sh")
        var environment: [String: String] = [
            "PGHOST": "127.0.0.1",
            "PGPORT": "\(try TestEnvironment.postgresPort)",
            "PGUSER": "warden_admin",
            "PGPASSWORD": try TestEnvironment.adminPassword,
            "PGDATABASE": "postgres",
            "WARDEN_POSTGRES_DATABASE": name,
        ]
        for service in WardenServiceName.allCases {
            environment["WARDEN_DB_PASSWORD_\(service.rawValue.uppercased())"] = try TestEnvironment.databasePassword
        }
        let child = try ChildProcess(
            name: "provision", executable: URL(fileURLWithPath: "/bin/bash"), arguments: [script.path], environment: environment)
        guard let status = await child.waitForExit(timeout: .seconds(60)), status == 0 else {
            throw ProvisionFailed(output: child.output)
        }
        return TestDatabase(name: name)
    }

    struct ProvisionFailed: Error, CustomStringConvertible {
        var output: String
        var description: String { "provisioning failed: \(output)" }
    }

    /// Connection settings for a service's own role.
    func settings(for service: WardenServiceName, password: String? = nil) throws -> ServiceConfiguration.DatabaseSettings {
        .init(
            host: "127.0.0.1",
            port: try TestEnvironment.postgresPort,
            database: name,
            user: service.databaseRole,
            password: try password ?? TestEnvironment.databasePassword,
            tls: .disable,
            maxConnections: 4
        )
    }

    /// Environment variables that point a service process at this database.
    func environment(for service: WardenServiceName) throws -> [String: String] {
        [
            "WARDEN_POSTGRES_HOST": "127.0.0.1",
            "WARDEN_POSTGRES_PORT": "\(try TestEnvironment.postgresPort)",
            "WARDEN_POSTGRES_DATABASE": name,
            "WARDEN_POSTGRES_PASSWORD": try TestEnvironment.databasePassword,
            "WARDEN_POSTGRES_TLS": "disable",
        ]
    }
}

/// Runs `body` with a running `DatabasePool` for `service`'s role.
func withDatabaseClient<T: Sendable>(
    _ database: TestDatabase,
    as service: WardenServiceName,
    _ body: @escaping @Sendable (DatabasePool) async throws -> T
) async throws -> T {
    // The client's own log: its warning that `body` leased a connection before `run()` started (the
    // lease waits for it) said nothing, hundreds of times a run.
    var logger = TestEnvironment.logger
    logger.logLevel = .error
    let client = try ServiceDatabase.makeClient(try database.settings(for: service), logger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            await client.run()
            return nil
        }
        defer { group.cancelAll() }
        let result = try await body(client)
        return result
    }
}
