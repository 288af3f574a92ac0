import Hummingbird
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// The approvals service. Holds calls that need a human, asks approvers, and resumes or rejects them.
///
/// The platform gives it configuration, PostgreSQL (schema `approvals`), NATS, migrations, heartbeats,
/// a health responder on `warden.approvals.health` and `/livez`, `/readyz`, `/metrics`.
package struct ApprovalsService: WardenServiceDefinition {
    package static let service = WardenServiceName.approvals
    package static let migrations: [Migration] = [PlatformMigrations.instances]

    package let services: [any Service]

    package init(runtime: ServiceRuntime) async throws {
        services = []
    }
}
