import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenServiceKit

/// `/admin/v1/orgs…`: orgs, their users and agents, kept by the policy service. Disabling an agent
/// (or a user, for each of its agents) revokes their tokens on every gateway at once.
public struct PrincipalAdminRoutes: Sendable {
    let client: ServiceClient
    let revocations: RevocationList
    let credential: AdminCredential?
    let logger: Logger

    public init(client: ServiceClient, revocations: RevocationList, credential: AdminCredential?, logger: Logger) {
        self.client = client
        self.revocations = revocations
        self.credential = credential
        self.logger = logger
    }

    public func addRoutes(to router: Router<BasicRequestContext>) {
        let orgs = router.group("/admin/v1/orgs")
        orgs.get { request, _ in await admin(request) { try await call(PrincipalEndpoints.listOrgs, EmptyBody()) } }
        orgs.post { request, _ in await admin(request) { try await call(PrincipalEndpoints.createOrg, try await body(request), status: .created) } }
        orgs.get(":org/users") { request, context in await admin(request) { try await call(PrincipalEndpoints.listUsers, OrgReference(org: org(context))) } }
        orgs.post(":org/users") { request, context in
            await admin(request) {
                let fields: [String: String] = try await body(request)
                return try await call(PrincipalEndpoints.createUser, UserCreation(org: org(context), email: fields["email"] ?? "", role: fields["role"] ?? "member"), status: .created)
            }
        }
        orgs.get(":org/agents") { request, context in await admin(request) { try await call(PrincipalEndpoints.listAgents, OrgReference(org: org(context))) } }
        orgs.post(":org/agents") { request, context in
            await admin(request) {
                let fields: [String: String] = try await body(request)
                let creation = AgentCreation(org: org(context), name: fields["name"] ?? "", agentClass: fields["agentClass"] ?? "default", owner: fields["owner"] ?? "")
                return try await call(PrincipalEndpoints.createAgent, creation, status: .created)
            }
        }
        for (action, disabled) in [("disable", true), ("enable", false)] {
            orgs.post(RouterPath(":org/agents/:id/\(action)")) { request, context in
                await admin(request) {
                    let agent = try await client.call(PrincipalEndpoints.setAgentDisabled, DisableRequest(org: org(context), id: context.parameters.get("id") ?? "", disabled: disabled))
                    if disabled { try await revokeAgents([agent.id]) }
                    return ServerAdminRoutes.json(.ok, agent)
                }
            }
            orgs.post(RouterPath(":org/users/:id/\(action)")) { request, context in
                await admin(request) {
                    let user = try await client.call(PrincipalEndpoints.setUserDisabled, DisableRequest(org: org(context), id: context.parameters.get("id") ?? "", disabled: disabled))
                    if disabled {
                        let agents = try await client.call(PrincipalEndpoints.listAgents, OrgReference(org: user.org)).agents
                        try await revokeAgents(agents.filter { $0.owner == user.id }.map(\.id))
                    }
                    return ServerAdminRoutes.json(.ok, user)
                }
            }
        }
    }

    func org(_ context: BasicRequestContext) -> String { context.parameters.get("org") ?? "" }

    func revokeAgents(_ agents: [String]) async throws {
        let now = Int64(Date().timeIntervalSince1970)
        for agent in agents { try await revocations.revoke(Revocation(kind: .agent, id: agent, at: now)) }
    }

    struct BadBody: Error {}

    func body<T: Decodable>(_ request: Request) async throws -> T {
        guard let buffer = try? await request.body.collect(upTo: 16 << 10), let value = try? JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView)) else {
            throw BadBody()
        }
        return value
    }

    func call<In, Out>(_ endpoint: ServiceEndpoint<In, Out>, _ body: In, status: HTTPResponse.Status = .ok) async throws -> Response {
        ServerAdminRoutes.json(status, try await client.call(endpoint, body))
    }

    /// The admin check, and the one place service errors become HTTP answers here.
    func admin(_ request: Request, _ body: () async throws -> Response) async -> Response {
        guard let credential else {
            return ServerAdminRoutes.problem(.serviceUnavailable, "admin_disabled", "the admin API is off: set WARDEN_ADMIN_TOKEN on the gateway")
        }
        guard credential.accepts(request.headers[.authorization]) else {
            return ServerAdminRoutes.problem(.unauthorized, "unauthorized", "an admin bearer token is required")
        }
        do {
            return try await body()
        } catch is BadBody {
            return ServerAdminRoutes.problem(.badRequest, "invalid", "the body must be a JSON object of the documented fields")
        } catch let error as ServiceError {
            return ServerAdminRoutes.problem(Self.status(error.code), error.code.rawValue, error.message)
        } catch {
            logger.error("principal administration failed", metadata: ["error": "\(error)"])
            return ServerAdminRoutes.problem(.serviceUnavailable, "unavailable", "try again")
        }
    }

    static func status(_ code: ServiceError.Code) -> HTTPResponse.Status {
        switch code {
        case .badRequest: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .forbidden: .forbidden
        case .unauthorized: .unauthorized
        default: .serviceUnavailable
        }
    }
}
