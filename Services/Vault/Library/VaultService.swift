import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// The vault service. Holds credentials encrypted and resolves them for the gateway at execution
/// time; agents never see them. Today it holds the token signing keys (sealed with
/// `WARDEN_VAULT_KEY`) and signs agent tokens for the gateway.
///
/// The platform gives it configuration, PostgreSQL (schema `vault`), NATS, migrations, heartbeats,
/// a health responder on `warden.vault.health` and `/livez`, `/readyz`, `/metrics`.
package struct VaultService: WardenServiceDefinition {
    package static let service = WardenServiceName.vault
    package static let migrations: [Migration] = [
        PlatformMigrations.instances, VaultMigrations.signingKeys, APIKeyStore.migration, AdminKeyStore.migration,
    ]

    package let services: [any Service]

    package init(runtime: ServiceRuntime) async throws {
        let vaultKey = try VaultKey.fromEnvironment()
        let store = SigningKeyStore(database: runtime.database, vaultKey: vaultKey, logger: runtime.logger)
        let keyRing = SigningKeyRing(store: store, startup: runtime.startup)
        let apiKeys = APIKeyStore(database: runtime.database, vaultKey: vaultKey, logger: runtime.logger)
        let adminKeys = AdminKeyStore(database: runtime.database, vaultKey: vaultKey, logger: runtime.logger)
        let startup = runtime.startup
        let client = runtime.client
        let bus = runtime.bus, logger = runtime.logger
        func serve<Request, Response>(_ endpoint: ServiceEndpoint<Request, Response>, _ body: @escaping @Sendable (Request) async throws -> Response)
            -> any Service
        {
            ServiceResponder(endpoint, bus: bus, logger: logger) { request, _ in
                try await startup.wait()
                return try await body(request)
            }
        }
        services = [
            serve(BootstrapEndpoints.adminKey) { _ in BootstrapAdminKey(key: try await adminKeys.bootstrap()) },
            serve(AdminKeyEndpoints.create) { try await adminKeys.create(label: $0.label) },
            serve(AdminKeyEndpoints.list) { _ in AdminKeyList(keys: try await adminKeys.list()) },
            serve(AdminKeyEndpoints.check) { APIKeyReference(id: try await adminKeys.check($0.key)) },
            serve(AdminKeyEndpoints.revoke) {
                try await adminKeys.revoke($0.id)
                return EmptyBody()
            },
            ServiceResponder(VaultEndpoints.publicKeys, bus: runtime.bus, logger: runtime.logger) { _, _ in
                let keys = try await keyRing.keys()
                return PublicSigningKeys(keys: keys.map { PublicSigningKey(kid: $0.kid, x: Base64URL.encode($0.publicKey.rawPublicKey)) })
            },
            ServiceResponder(VaultEndpoints.rotateKeys, bus: runtime.bus, logger: runtime.logger) { _, _ in
                let keys = try await keyRing.rotate()
                return PublicSigningKeys(keys: keys.map { PublicSigningKey(kid: $0.kid, x: Base64URL.encode($0.publicKey.rawPublicKey)) })
            },
            ServiceResponder(VaultEndpoints.signToken, bus: runtime.bus, logger: runtime.logger) { request, _ in
                try await keyRing.sign(request)
            },
            ServiceResponder(APIKeyEndpoints.create, bus: runtime.bus, logger: runtime.logger) { request, _ in
                try await startup.wait()
                return try await apiKeys.create(request)
            },
            ServiceResponder(APIKeyEndpoints.exchange, bus: runtime.bus, logger: runtime.logger) { request, _ in
                try await startup.wait()
                let holder = try await apiKeys.check(request.key)
                // The agent must still exist and be enabled, and the token live no longer than its org allows.
                let resolved: ResolvedAgent
                do {
                    resolved = try await client.call(PrincipalEndpoints.resolveAgent, AgentReference(org: holder.org, agent: holder.agent))
                } catch let error as ServiceError where error.code == .forbidden || error.code == .notFound {
                    throw ServiceError(.unauthorized, "the client credentials are not valid")
                }
                return try await keyRing.sign(
                    TokenSigningRequest(
                        issuer: request.issuer, audience: request.audience, agent: holder.agent, org: holder.org, user: holder.user,
                        scopes: holder.scopes, lifetimeSeconds: min(request.lifetimeSeconds, resolved.org.maxTokenLifetime)
                    )
                )
            },
            ServiceResponder(APIKeyEndpoints.check, bus: runtime.bus, logger: runtime.logger) { request, _ in
                try await startup.wait()
                let holder = try await apiKeys.check(request.key)
                return APIKeyHolder(id: holder.id, agent: holder.agent, org: holder.org, user: holder.user, scopes: holder.scopes)
            },
            ServiceResponder(APIKeyEndpoints.revoke, bus: runtime.bus, logger: runtime.logger) { request, _ in
                try await startup.wait()
                try await apiKeys.revoke(request.id)
                return EmptyBody()
            },
        ]
    }
}
