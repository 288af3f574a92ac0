import Hummingbird
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// The policy service. Decides every tool call: the three permission layers plus RBAC/ABAC rules on arguments; deny by default.
///
/// The platform gives it configuration, PostgreSQL (schema `policy`), NATS, migrations, heartbeats,
/// a health responder on `warden.policy.health` and `/livez`, `/readyz`, `/metrics`.
public struct PolicyService: WardenServiceDefinition {
    public static let service = WardenServiceName.policy
    public static let migrations: [Migration] = [PlatformMigrations.instances]

    public let services: [any Service]

    public init(runtime: ServiceRuntime) async throws {
        services = []
    }
}
