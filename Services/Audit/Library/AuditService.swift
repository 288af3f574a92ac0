import Hummingbird
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// The audit service: stores every event the services publish to the audit stream, one hash chain
/// per org (`AuditIngest`, `AuditStore`), and answers queries and verifications over NATS.
///
/// The platform gives it configuration, PostgreSQL (schema `audit`), NATS, migrations, heartbeats,
/// a health responder on `warden.audit.health` and `/livez`, `/readyz`, `/metrics`.
package struct AuditService: WardenServiceDefinition {
    package static let service = WardenServiceName.audit
    package static let migrations: [Migration] = [PlatformMigrations.instances, AuditStore.migration]

    package let services: [any Service]

    package init(runtime: ServiceRuntime) async throws {
        let store = AuditStore(database: runtime.database, logger: runtime.logger)
        let startup = runtime.startup
        services = [
            AuditIngest(bus: runtime.bus, store: store, logger: runtime.logger),
            ServiceResponder(AuditEndpoints.query, bus: runtime.bus, logger: runtime.logger) { request, _ in
                try await startup.wait()
                return try await store.query(request)
            },
            ServiceResponder(AuditEndpoints.verify, bus: runtime.bus, logger: runtime.logger) { request, _ in
                try await startup.wait()
                return try await store.verify(org: request.org)
            },
        ]
    }
}
