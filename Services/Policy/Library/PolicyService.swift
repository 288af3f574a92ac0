import Hummingbird
import ServiceLifecycle
import WardenContracts
import WardenServiceKit

/// The policy service. Decides every tool call: the three permission layers plus RBAC/ABAC rules on
/// arguments; deny by default. Today it keeps the principals: orgs, their users and agents.
///
/// The platform gives it configuration, PostgreSQL (schema `policy`), NATS, migrations, heartbeats,
/// a health responder on `warden.policy.health` and `/livez`, `/readyz`, `/metrics`.
package struct PolicyService: WardenServiceDefinition {
    package static let service = WardenServiceName.policy
    package static let migrations: [Migration] = [
        PlatformMigrations.instances, PolicyMigrations.principals, PolicyMigrations.federation, PolicyMigrations.rawAPIKeys,
        PolicyMigrations.serviceAccounts, PolicyMigrations.federationURLs,
    ]

    package let services: [any Service]

    package init(runtime: ServiceRuntime) async throws {
        let store = PrincipalStore(database: runtime.database, logger: runtime.logger)
        let startup = runtime.startup
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
            serve(BootstrapEndpoints.principals) { try await store.bootstrap($0) },
            serve(PrincipalEndpoints.createOrg) { try await store.createOrg($0) },
            serve(PrincipalEndpoints.listOrgs) { _ in OrgList(orgs: try await store.orgs()) },
            serve(PrincipalEndpoints.updateOrg) { try await store.updateOrg($0) },
            serve(PrincipalEndpoints.createUser) { try await store.createUser($0) },
            serve(PrincipalEndpoints.listUsers) { UserList(users: try await store.users(org: $0.org)) },
            serve(PrincipalEndpoints.setUserDisabled) { try await store.setUserDisabled($0) },
            serve(PrincipalEndpoints.createAgent) { try await store.createAgent($0) },
            serve(PrincipalEndpoints.listAgents) { AgentList(agents: try await store.agents(org: $0.org)) },
            serve(PrincipalEndpoints.setAgentDisabled) { try await store.setAgentDisabled($0) },
            serve(PrincipalEndpoints.resolveAgent) { try await store.resolve($0) },
            serve(PrincipalEndpoints.createServiceAccount) { try await store.createServiceAccount($0) },
            serve(PrincipalEndpoints.listServiceAccounts) { ServiceAccountList(serviceAccounts: try await store.serviceAccounts(org: $0.org)) },
            serve(PrincipalEndpoints.setServiceAccountDisabled) { try await store.setServiceAccountDisabled($0) },
            serve(FederationEndpoints.trust) { try await store.trust($0) },
            serve(FederationEndpoints.list) { TrustedIssuerList(issuers: try await store.trusts(org: $0.org, issuer: nil)) },
            serve(FederationEndpoints.forIssuer) { TrustedIssuerList(issuers: try await store.trusts(org: nil, issuer: $0.issuer)) },
            serve(FederationEndpoints.resolve) { try await store.resolveFederated(org: $0.org, email: $0.email, agentName: $0.agentName) },
        ]
    }
}
