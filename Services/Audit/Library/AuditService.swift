import Hummingbird
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// The audit service. Keeps the tamper-evident record of every call and every admin action.
///
/// The platform gives it configuration, PostgreSQL (schema `audit`), NATS, migrations, heartbeats,
/// a health responder on `warden.audit.health` and `/livez`, `/readyz`, `/metrics`.
public struct AuditService: WardenServiceDefinition {
    public static let service = WardenServiceName.audit
    public static let migrations: [Migration] = [PlatformMigrations.instances]

    public let services: [any Service]

    public init(runtime: ServiceRuntime) async throws {
        services = []
    }
}
