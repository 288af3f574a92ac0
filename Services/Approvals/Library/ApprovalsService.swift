import Hummingbird
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// The approvals service. Holds calls that need a human, asks approvers, and resumes or rejects them.
///
/// The platform gives it configuration, PostgreSQL (schema `approvals`), NATS, migrations, heartbeats,
/// a health responder on `warden.approvals.health` and `/livez`, `/readyz`, `/metrics`.
public struct ApprovalsService: WardenServiceDefinition {
    public static let service = WardenServiceName.approvals
    public static let migrations: [Migration] = [PlatformMigrations.instances]

    public let services: [any Service]

    public init(runtime: ServiceRuntime) async throws {
        services = []
    }
}
