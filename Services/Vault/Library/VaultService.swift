import Hummingbird
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// The vault service. Holds credentials encrypted and resolves them for the gateway at execution time; agents never see them.
///
/// The platform gives it configuration, PostgreSQL (schema `vault`), NATS, migrations, heartbeats,
/// a health responder on `warden.vault.health` and `/livez`, `/readyz`, `/metrics`.
public struct VaultService: WardenServiceDefinition {
    public static let service = WardenServiceName.vault
    public static let migrations: [Migration] = [PlatformMigrations.instances]

    public let services: [any Service]

    public init(runtime: ServiceRuntime) async throws {
        services = []
    }
}
