import Hummingbird
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// The audit service. Keeps the tamper-evident record of every call and every admin action.
///
/// The platform gives it configuration, PostgreSQL (schema `audit`), NATS, migrations, heartbeats,
/// a health responder on `warden.audit.health` and `/livez`, `/readyz`, `/metrics`.
package struct AuditService: WardenServiceDefinition {
    package static let service = WardenServiceName.audit
    package static let migrations: [Migration] = [PlatformMigrations.instances]

    package let services: [any Service]

    package init(runtime: ServiceRuntime) async throws {
        services = []
    }
}
