import Foundation
import Hummingbird
import Logging
import Metrics
import ServiceLifecycle
import WardenContracts
import WardenNATS
import WardenServiceKit

/// The policy service. Keeps the principals (orgs, their users and agents) and the policy documents
/// (`PolicyStore`: every version, checked before it is stored), and decides calls with them
/// (`PolicyEngine`: the admin and user layers, rules on arguments; deny by default).
///
/// The platform gives it configuration, PostgreSQL (schema `policy`), NATS, migrations, heartbeats,
/// a health responder on `warden.policy.health` and `/livez`, `/readyz`, `/metrics`.
package struct PolicyService: WardenServiceDefinition {
    package static let service = WardenServiceName.policy
    package static let migrations: [Migration] = [
        PlatformMigrations.instances, PolicyMigrations.principals, PolicyMigrations.federation, PolicyMigrations.rawAPIKeys,
        PolicyMigrations.serviceAccounts, PolicyMigrations.federationURLs, PolicyStore.migration,
        PolicyMigrations.userAttributes, PolicyStore.promptsAndResources,
    ]

    package let services: [any Service]

    package init(runtime: ServiceRuntime) async throws {
        let store = PrincipalStore(database: runtime.database, logger: runtime.logger)
        let remembered = RememberedPrincipals(
            bus: runtime.bus, resolutionLifetime: try RememberedPrincipals.resolutionLifetime(ProcessInfo.processInfo.environment),
            logger: runtime.logger)
        let policies = PolicyStore(database: runtime.database, principals: store, remembered: remembered, logger: runtime.logger)
        let startup = runtime.startup
        let bus = runtime.bus, logger = runtime.logger
        func serve<Request, Response>(
            _ endpoint: ServiceEndpoint<Request, Response>, executor: (any TaskExecutor)? = nil,
            _ body: @escaping @Sendable (Request) async throws -> Response
        ) -> any Service {
            ServiceResponder(endpoint, bus: bus, logger: logger, executor: executor) { request, _ in
                try await startup.wait()
                return try await body(request)
            }
        }
        /// Tells every gateway replica that a policy changed (after it is stored).
        @Sendable func announce(_ applied: PolicyApplied) -> PolicyApplied {
            if !applied.dryRun { remembered.changed(org: applied.version.scope.org) }
            guard !applied.dryRun,
                let payload = try? EnvelopeCoding.encoder().encode(PolicyChanged(scope: applied.version.scope, version: applied.version.version))
            else { return applied }
            do { try bus.publish(PolicyEndpoints.changedSubject, payload: payload) } catch {
                logger.warning("cannot announce a policy change", metadata: ["org": "\(applied.version.scope.org)", "error": "\(error)"])
            }
            return applied
        }
        services = [
            remembered,
            serve(PolicyEndpoints.apply) { announce(try await policies.apply($0)) },
            serve(PolicyEndpoints.rollback) { announce(try await policies.rollback($0)) },
            serve(PolicyEndpoints.current) { try await policies.current($0) },
            serve(PolicyEndpoints.history) { try await policies.history($0) },
            serve(PolicyEndpoints.explain) { try await policies.explain($0) },
            // The gateway asks before every call it has not cached: on the pool's event loop, a
            // decision that reads PostgreSQL needs no hand-over between threads.
            serve(PolicyEndpoints.decide, executor: runtime.database.executor) { question in
                let explanation = try await policies.decide(question)
                Counter(label: "warden_policy_decisions_total", dimensions: [("outcome", explanation.decision)]).increment()
                return explanation
            },
            serve(PolicyEndpoints.visible) { try await policies.visible($0) },
            serve(PolicyEndpoints.effective) { try await policies.effective($0) },
            serve(BootstrapEndpoints.principals) { try await store.bootstrap($0) },
            serve(PrincipalEndpoints.createOrg) { try await store.createOrg($0) },
            serve(PrincipalEndpoints.listOrgs) { _ in OrgList(orgs: try await store.orgs()) },
            serve(PrincipalEndpoints.updateOrg) { request in
                // Tokens' lifetimes and raw API keys follow the org's settings: resolutions are forgotten.
                defer { remembered.changed(org: request.id) }
                return try await store.updateOrg(request)
            },
            serve(PrincipalEndpoints.createUser) { try await store.createUser($0) },
            serve(PrincipalEndpoints.listUsers) { UserList(users: try await store.users(org: $0.org)) },
            serve(PrincipalEndpoints.setUserDisabled) { request in
                defer { remembered.changed(org: request.org) }
                return try await store.setUserDisabled(request)
            },
            serve(PrincipalEndpoints.setUserAttributes) { request in
                // Forgotten even when the answer is an error: the write may have happened.
                let user: User
                do { user = try await store.setUserAttributes(request) } catch {
                    remembered.changed(org: request.org)
                    throw error
                }
                remembered.changed(org: user.org)
                // Decisions read the attributes: every gateway drops what it cached of the org.
                if let payload = try? EnvelopeCoding.encoder().encode(PolicyChanged(scope: PolicyScope(org: user.org), version: 0)) {
                    try? bus.publish(PolicyEndpoints.changedSubject, payload: payload)
                }
                return user
            },
            serve(PrincipalEndpoints.createAgent) { try await store.createAgent($0) },
            serve(PrincipalEndpoints.listAgents) { AgentList(agents: try await store.agents(org: $0.org)) },
            serve(PrincipalEndpoints.setAgentDisabled) { request in
                defer { remembered.changed(org: request.org) }
                return try await store.setAgentDisabled(request)
            },
            serve(PrincipalEndpoints.resolveAgent) { reference in
                // Service accounts are rare and read as they are (`resolve` finds them among the org's).
                guard !reference.agent.hasPrefix("svc_") else { return try await store.resolve(reference) }
                return try await remembered.resolved(reference) { try await store.resolve(reference) }
            },
            serve(PrincipalEndpoints.findUser) { try await store.user(org: $0.org, email: $0.email) },
            serve(PrincipalEndpoints.agentForClient) { try await store.agentForClient($0) },
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
