import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenServiceKit

/// `/admin/v1/orgs…`: orgs, their users and agents, kept by the policy service. Disabling an agent
/// (or a user, for each of its agents) revokes their tokens on every gateway at once.
package struct PrincipalAdminRoutes: Sendable {
    let client: ServiceClient
    let revocations: RevocationList
    let access: AdminAccess
    let authenticator: GatewayAuthenticator
    let logger: Logger

    package init(client: ServiceClient, revocations: RevocationList, access: AdminAccess, authenticator: GatewayAuthenticator, logger: Logger) {
        self.client = client
        self.revocations = revocations
        self.access = access
        self.authenticator = authenticator
        self.logger = logger
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        let orgs = router.group("/admin/v1/orgs")
        orgs.get { request, _ in
            await admin(request, org: nil, platformOnly: false) { principal in
                let all = try await client.call(PrincipalEndpoints.listOrgs, EmptyBody()).orgs
                return ServerAdminRoutes.json(.ok, OrgList(orgs: all.filter { principal.mayManage(org: $0.id) }))
            }
        }
        orgs.post { request, _ in
            await admin(request, org: nil) { _ in try await call(PrincipalEndpoints.createOrg, try await body(request), status: .created) }
        }
        orgs.patch(":org") { request, context in
            await admin(request, org: org(context)) { _ in
                // A patch: any of the fields, the org from the path.
                struct Patch: Decodable {
                    var name: String?
                    var maxTokenLifetime: Int?
                    var rawAPIKeysOnMCP: Bool?
                }
                let patch: Patch = try await body(request)
                let update = OrgCreation(
                    id: org(context), name: patch.name ?? "", maxTokenLifetime: patch.maxTokenLifetime, rawAPIKeysOnMCP: patch.rawAPIKeysOnMCP)
                return try await call(PrincipalEndpoints.updateOrg, update)
            }
        }
        orgs.get(":org/users") { request, context in
            await admin(request, org: org(context)) { _ in try await call(PrincipalEndpoints.listUsers, OrgReference(org: org(context))) }
        }
        orgs.post(":org/users") { request, context in
            await admin(request, org: org(context)) { _ in
                let fields: [String: String] = try await body(request)
                return try await call(
                    PrincipalEndpoints.createUser, UserCreation(org: org(context), email: fields["email"] ?? "", role: fields["role"] ?? "member"),
                    status: .created)
            }
        }
        orgs.put(":org/users/:id/attributes") { request, context in
            await admin(request, org: org(context)) { _ in
                struct Body: Decodable { var attributes: [String: String] }
                let body: Body = try await body(request)
                return try await call(
                    PrincipalEndpoints.setUserAttributes,
                    UserAttributes(org: org(context), id: context.parameters.get("id") ?? "", attributes: body.attributes))
            }
        }
        orgs.get(":org/agents") { request, context in
            await admin(request, org: org(context)) { _ in try await call(PrincipalEndpoints.listAgents, OrgReference(org: org(context))) }
        }
        orgs.post(":org/agents") { request, context in
            await admin(request, org: org(context)) { _ in
                let fields: [String: String] = try await body(request)
                let creation = AgentCreation(
                    org: org(context), name: fields["name"] ?? "", agentClass: fields["agentClass"] ?? "default", owner: fields["owner"] ?? "")
                return try await call(PrincipalEndpoints.createAgent, creation, status: .created)
            }
        }
        addAdminTokenRoute(to: orgs)
        addApproverTokenRoute(to: orgs)
        orgs.get(":org/service-accounts") { request, context in
            await admin(request, org: org(context)) { _ in try await call(PrincipalEndpoints.listServiceAccounts, OrgReference(org: org(context))) }
        }
        orgs.post(":org/service-accounts") { request, context in
            await admin(request, org: org(context)) { _ in
                let fields: [String: String] = try await body(request)
                return try await call(
                    PrincipalEndpoints.createServiceAccount, ServiceAccountCreation(org: org(context), name: fields["name"] ?? ""), status: .created)
            }
        }
        // Trusted identity providers of an org (federation).
        orgs.get(":org/trusted-issuers") { request, context in
            await admin(request, org: org(context)) { _ in try await call(FederationEndpoints.list, OrgReference(org: org(context))) }
        }
        orgs.post(":org/trusted-issuers") { request, context in
            await admin(request, org: org(context)) { _ in
                var trust: TrustedIssuer = try await body(request)
                trust.org = org(context)
                return try await call(FederationEndpoints.trust, trust, status: .created)
            }
        }
        for (action, disabled) in [("disable", true), ("enable", false)] {
            orgs.post(RouterPath(":org/agents/:id/\(action)")) { request, context in
                await admin(request, org: org(context)) { _ in
                    let agent = try await client.call(
                        PrincipalEndpoints.setAgentDisabled,
                        DisableRequest(org: org(context), id: context.parameters.get("id") ?? "", disabled: disabled))
                    if disabled { try await revokeAgents([agent.id]) }
                    return ServerAdminRoutes.json(.ok, agent)
                }
            }
            orgs.post(RouterPath(":org/service-accounts/:id/\(action)")) { request, context in
                await admin(request, org: org(context)) { _ in
                    let account = try await client.call(
                        PrincipalEndpoints.setServiceAccountDisabled,
                        DisableRequest(org: org(context), id: context.parameters.get("id") ?? "", disabled: disabled)
                    )
                    if disabled { try await revokeAgents([account.id]) }
                    return ServerAdminRoutes.json(.ok, account)
                }
            }
            orgs.post(RouterPath(":org/users/:id/\(action)")) { request, context in
                await admin(request, org: org(context)) { _ in
                    let user = try await client.call(
                        PrincipalEndpoints.setUserDisabled,
                        DisableRequest(org: org(context), id: context.parameters.get("id") ?? "", disabled: disabled))
                    if disabled {
                        // Its agents' tokens, and its own admin tokens.
                        let agents = try await client.call(PrincipalEndpoints.listAgents, OrgReference(org: user.org)).agents
                        try await revokeAgents(agents.filter { $0.owner == user.id }.map(\.id) + [user.id])
                    }
                    return ServerAdminRoutes.json(.ok, user)
                }
            }
        }
    }

    func org(_ context: WardenRequestContext) -> String { context.parameters.get("org") ?? "" }

    /// A token a user of the org holds as a person (not an agent): org admin tokens and approver tokens.
    struct UserToken {
        var path: String
        var roles: Set<String>
        var audience: String
        var scope: String
        /// Who it is for, for the refusal ("owners and admins").
        var holders: String
        var label: String
    }

    /// Org admin tokens: for an enabled owner or admin of the org, audience `<url>/admin`.
    func addAdminTokenRoute(to orgs: RouterGroup<WardenRequestContext>) {
        addUserTokenRoute(
            UserToken(
                path: ":org/admin-tokens", roles: ["owner", "admin"], audience: authenticator.adminAudience, scope: "admin",
                holders: "admin tokens are for enabled owners and admins of the org", label: "org admin token"), to: orgs)
    }

    /// Approver tokens: for an enabled approver, admin or owner of the org, audience
    /// `<url>/approvals`, scope `approve`. They decide approval requests, nothing else.
    func addApproverTokenRoute(to orgs: RouterGroup<WardenRequestContext>) {
        addUserTokenRoute(
            UserToken(
                path: ":org/approver-tokens", roles: ["owner", "admin", "approver"], audience: authenticator.approverAudience, scope: "approve",
                holders: "approver tokens are for enabled approvers, admins and owners of the org", label: "approver token"), to: orgs)
    }

    /// Issues `kind` to the enabled user of the body's `user` field, for at most the org's longest
    /// token lifetime (default an hour). Whoever issues one can act as that user: who did is logged.
    func addUserTokenRoute(_ kind: UserToken, to orgs: RouterGroup<WardenRequestContext>) {
        orgs.post(RouterPath(kind.path)) { request, context in
            await admin(request, org: org(context)) { principal in
                let fields: [String: String] = try await body(request)
                let users = try await client.call(PrincipalEndpoints.listUsers, OrgReference(org: org(context))).users
                guard let user = users.first(where: { $0.id == fields["user"] }) else {
                    throw ServiceError(.notFound, "no user '\((fields["user"] ?? "").prefix(32))' in this org")
                }
                guard !user.disabled, kind.roles.contains(user.role) else { throw ServiceError(.forbidden, kind.holders) }
                let orgInfo = try await client.call(PrincipalEndpoints.listOrgs, EmptyBody()).orgs.first { $0.id == user.org }
                let signing = TokenSigningRequest(
                    issuer: authenticator.publicURL, audience: kind.audience, agent: user.id, org: user.org, user: user.id, scopes: [kind.scope],
                    lifetimeSeconds: min(Int(fields["lifetimeSeconds"] ?? "") ?? 3600, orgInfo?.maxTokenLifetime ?? 3600))
                let issuer: String =
                    switch principal {
                    case .platform: "platform"
                    case .org(_, let admin): admin
                    }
                logger.notice("\(kind.label) issued", metadata: ["org": "\(user.org)", "user": "\(user.id)", "issued.by": "\(issuer)"])
                return try await call(VaultEndpoints.signToken, signing, status: .created)
            }
        }
    }

    func revokeAgents(_ agents: [String]) async throws {
        let now = Int64(Date().timeIntervalSince1970)
        for agent in agents { try await revocations.revoke(Revocation(kind: .subject, id: agent, at: now)) }
    }

    struct BadBody: Error {}

    func body<T: Decodable>(_ request: Request) async throws -> T {
        guard let buffer = try? await request.body.collect(upTo: 16 << 10),
            let value = try? JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        else {
            throw BadBody()
        }
        return value
    }

    func call<In, Out>(_ endpoint: ServiceEndpoint<In, Out>, _ body: In, status: HTTPResponse.Status = .ok) async throws -> Response {
        ServerAdminRoutes.json(status, try await client.call(endpoint, body))
    }

    /// The admin check (`org`: the org acted on; nil with `platformOnly`: platform-wide), and the
    /// one place service errors become HTTP answers here.
    func admin(_ request: Request, org: String?, platformOnly: Bool = true, _ body: (AdminPrincipal) async throws -> Response) async -> Response {
        let principal: AdminPrincipal
        switch platformOnly || org != nil ? await access.require(request, org: org) : await access.principal(request) {
        case .refused(let response): return response
        case .allowed(let allowed): principal = allowed
        }
        do {
            return try await body(principal)
        } catch is BadBody {
            return AdminProblem(.invalid, "the body must be a JSON object of the documented fields").response
        } catch let error as ServiceError {
            return AdminProblem(error).response
        } catch {
            logger.error("principal administration failed", metadata: ["error": "\(error)"])
            return AdminProblem(.unavailable, "try again").response
        }
    }
}
