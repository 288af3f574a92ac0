import Foundation
import Hummingbird
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// The audit service: stores every event the services publish to the audit stream, one hash chain
/// per org (`AuditIngest`, `AuditStore`), signs the chains' heads through the vault
/// (`AuditCheckpointer`), and answers queries, verifications and exports over NATS.
///
/// The platform gives it configuration, PostgreSQL (schema `audit`), NATS, migrations, heartbeats,
/// a health responder on `warden.audit.health` and `/livez`, `/readyz`, `/metrics`.
/// Configuration: `WARDEN_AUDIT_CHECKPOINT_SECONDS` (how often chains' heads are signed; default 60).
package struct AuditService: WardenServiceDefinition {
    package static let service = WardenServiceName.audit
    package static let migrations: [Migration] = [PlatformMigrations.instances, AuditStore.migration, AuditStore.checkpointsMigration]

    package let services: [any Service]

    package init(runtime: ServiceRuntime) async throws {
        let store = AuditStore(database: runtime.database, logger: runtime.logger)
        let checkpointer = AuditCheckpointer(
            store: store, client: runtime.client, interval: try AuditCheckpointer.interval(ProcessInfo.processInfo.environment),
            audit: AuditPublisher(bus: runtime.bus, logger: runtime.logger), logger: runtime.logger)
        let startup = runtime.startup
        services = [
            AuditIngest(bus: runtime.bus, store: store, startup: runtime.startup, logger: runtime.logger),
            checkpointer,
            ServiceResponder(AuditEndpoints.query, bus: runtime.bus, logger: runtime.logger) { request, context in
                try Self.requireGateway(context)
                try await startup.wait()
                return try await store.query(request)
            },
            ServiceResponder(AuditEndpoints.verify, bus: runtime.bus, logger: runtime.logger) { request, context in
                try Self.requireGateway(context)
                try await startup.wait()
                let keys = try await checkpointer.keys()
                return try await store.verify(org: request.org, signed: { try await checkpointer.signed(org: request.org) }, keys: keys)
            },
            ServiceResponder(AuditEndpoints.records, bus: runtime.bus, logger: runtime.logger) { request, context in
                try Self.requireGateway(context)
                try await startup.wait()
                return try await store.records(request)
            },
            ServiceResponder(AuditEndpoints.retention, bus: runtime.bus, logger: runtime.logger) { request, context in
                try Self.requireGateway(context)
                try await startup.wait()
                return try await checkpointer.setRetention(request)
            },
            ServiceResponder(AuditEndpoints.checkpoint, bus: runtime.bus, logger: runtime.logger) { request, context in
                try Self.requireGateway(context)
                try await startup.wait()
                return AuditCheckpointResult(checkpoint: try await checkpointer.checkpointHead(org: request.org))
            },
        ]
    }

    /// The record is read and managed through the gateway's admin API only (which checks who asks).
    static func requireGateway(_ context: WardenServiceKit.RequestContext) throws(ServiceError) {
        guard context.isFrom(.gateway) else { throw ServiceError(.forbidden, "the audit record is served to the gateway only") }
    }
}
