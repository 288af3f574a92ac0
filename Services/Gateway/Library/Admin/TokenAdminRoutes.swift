import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenServiceKit

/// `POST /admin/v1/tokens`: an operator issues an agent token (signed by the vault for this
/// gateway's audience) for an enabled agent of an org; the token names the user the agent acts for
/// and lives at most as long as the org allows.
package struct TokenAdminRoutes: Sendable {
    package static let path = "/admin/v1/tokens"
    let authenticator: GatewayAuthenticator
    let client: ServiceClient
    let revocations: RevocationList
    let access: AdminAccess
    let logger: Logger

    package init(authenticator: GatewayAuthenticator, client: ServiceClient, revocations: RevocationList, access: AdminAccess, logger: Logger) {
        self.authenticator = authenticator
        self.client = client
        self.revocations = revocations
        self.access = access
        self.logger = logger
    }

    package struct IssueRequest: Codable, Sendable {
        package var org: String
        package var agent: String
        package var scopes: [String]?
        package var lifetimeSeconds: Int?
    }

    package struct KeyRequest: Codable, Sendable {
        package var org: String
        package var agent: String
        package var scopes: [String]?
        package var expiresInSeconds: Int?
    }

    package struct RevokeRequest: Codable, Sendable {
        package var tokenID: String?
        package var agent: String?
        /// Required from org admins: the agent must be one of this org's.
        package var org: String?
    }

    /// The refusal, if the caller may not act on `org` (nil: platform-wide).
    func refusal(_ request: Request, org: String?) async -> Response? {
        if case .refused(let response) = await access.require(request, org: org) { return response }
        return nil
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.post("/admin/v1/keys/rotate") { request, _ -> Response in
            if let refused = await refusal(request, org: nil) { return refused }
            do throws(ServiceError) {
                let keys = try await client.call(VaultEndpoints.rotateKeys, EmptyBody())
                _ = try? await authenticator.keys(force: true)
                return ServerAdminRoutes.json(.ok, keys)
            } catch {
                return AdminProblem(error).response
            }
        }
        // API keys: created for an agent (shown once), revoked by id.
        router.post("/admin/v1/apikeys") { request, _ -> Response in
            guard let body = try? JSONDecoder().decode(KeyRequest.self, from: Data(try await request.body.collect(upTo: 16 << 10).readableBytesView))
            else {
                return AdminProblem(.invalid, "the body must be JSON with org, agent and optional scopes, expiresInSeconds").response
            }
            if let refused = await refusal(request, org: body.org) { return refused }
            do throws(ServiceError) {
                let resolved = try await client.call(PrincipalEndpoints.resolveAgent, AgentReference(org: body.org, agent: body.agent))
                let creation = APIKeyCreation(
                    agent: resolved.agent.id, org: resolved.org.id, user: resolved.owner.id, scopes: body.scopes ?? ["mcp"],
                    expiresInSeconds: body.expiresInSeconds)
                let created = try await client.call(APIKeyEndpoints.create, creation)
                logger.info("API key created", metadata: ["agent": "\(body.agent)", "org": "\(body.org)", "apikey.id": "\(created.id)"])
                return ServerAdminRoutes.json(.created, created)
            } catch {
                return AdminProblem(error).response
            }
        }
        router.post("/admin/v1/apikeys/:id/revoke") { request, context -> Response in
            if let refused = await refusal(request, org: nil) { return refused }
            do throws(ServiceError) {
                let id = context.parameters.get("id") ?? ""
                _ = try await client.call(APIKeyEndpoints.revoke, APIKeyReference(id: id))
                // Gateways that accepted it raw on /mcp drop it at once.
                try? await revocations.revoke(Revocation(kind: .apiKey, id: id, at: Int64(Date().timeIntervalSince1970)))
                return ServerAdminRoutes.json(.ok, ["revoked": context.parameters.get("id") ?? ""])
            } catch {
                return AdminProblem(error.code == .notFound ? .notFound : .unavailable, error.message).response
            }
        }
        // Platform admin keys: listed, created (shown once) and revoked by the platform only.
        router.get("/admin/v1/admin-keys") { request, _ -> Response in
            if let refused = await refusal(request, org: nil) { return refused }
            do throws(ServiceError) {
                return ServerAdminRoutes.json(.ok, try await client.call(AdminKeyEndpoints.list, EmptyBody()))
            } catch {
                return AdminProblem(error).response
            }
        }
        router.post("/admin/v1/admin-keys") { request, _ -> Response in
            if let refused = await refusal(request, org: nil) { return refused }
            guard
                let body = try? JSONDecoder().decode(
                    AdminKeyCreation.self, from: Data(try await request.body.collect(upTo: 16 << 10).readableBytesView))
            else {
                return AdminProblem(.invalid, "the body must be JSON with a label").response
            }
            do throws(ServiceError) {
                let created = try await client.call(AdminKeyEndpoints.create, body)
                logger.notice("admin key created", metadata: ["adminkey.id": "\(created.id)"])
                return ServerAdminRoutes.json(.created, created)
            } catch {
                return AdminProblem(error).response
            }
        }
        router.post("/admin/v1/admin-keys/:id/revoke") { request, context -> Response in
            if let refused = await refusal(request, org: nil) { return refused }
            let id = context.parameters.get("id") ?? ""
            do throws(ServiceError) {
                _ = try await client.call(AdminKeyEndpoints.revoke, APIKeyReference(id: id))
                try? await revocations.revoke(Revocation(kind: .apiKey, id: id, at: Int64(Date().timeIntervalSince1970)))
                logger.notice("admin key revoked", metadata: ["adminkey.id": "\(id)"])
                return ServerAdminRoutes.json(.ok, ["revoked": id])
            } catch {
                return AdminProblem(error).response
            }
        }
        // Revokes one token (by id) or every token an agent holds now; effective on every replica.
        router.post(RouterPath(Self.path + "/revoke")) { request, _ -> Response in
            guard
                let body = try? JSONDecoder().decode(
                    RevokeRequest.self, from: Data(try await request.body.collect(upTo: 16 << 10).readableBytesView)),
                (body.tokenID == nil) != (body.agent == nil)
            else {
                return AdminProblem(.invalid, "the body must be JSON with either tokenID or agent (and org)").response
            }
            // Org admins revoke their own org's agents; token ids carry no org, so they are the platform's.
            if let refused = await refusal(request, org: body.tokenID == nil ? body.org : nil) { return refused }
            if let agent = body.agent, let org = body.org {
                let agents = (try? await client.call(PrincipalEndpoints.listAgents, OrgReference(org: org)).agents) ?? []
                guard agents.contains(where: { $0.id == agent }) else {
                    return AdminProblem(.notFound, "no agent '\(agent.prefix(32))' in org '\(org.prefix(32))'").response
                }
            } else if body.agent != nil {
                if let refused = await refusal(request, org: nil) { return refused }
            }
            let revocation =
                body.tokenID.map { Revocation(kind: .token, id: $0, at: Int64(Date().timeIntervalSince1970)) }
                ?? Revocation(kind: .subject, id: body.agent!, at: Int64(Date().timeIntervalSince1970))
            do {
                try await revocations.revoke(revocation)
            } catch {
                logger.error("cannot store a revocation", metadata: ["error": "\(error)"])
                return AdminProblem(.unavailable, "revocations cannot be stored; try again").response
            }
            logger.info("revoked", metadata: ["revocation.kind": "\(revocation.kind.rawValue)", "revocation.id": "\(revocation.id)"])
            return ServerAdminRoutes.json(.ok, revocation)
        }
        router.post(RouterPath(Self.path)) { request, _ -> Response in
            let body: IssueRequest
            do {
                body = try JSONDecoder().decode(IssueRequest.self, from: Data(try await request.body.collect(upTo: 16 << 10).readableBytesView))
            } catch {
                return AdminProblem(.invalid, "the body must be JSON with org and agent (and optional scopes, lifetimeSeconds)").response
            }
            if let refused = await refusal(request, org: body.org) { return refused }
            do throws(ServiceError) {
                let resolved = try await client.call(PrincipalEndpoints.resolveAgent, AgentReference(org: body.org, agent: body.agent))
                let lifetime = body.lifetimeSeconds ?? 900
                guard lifetime > 0, lifetime <= resolved.org.maxTokenLifetime else {
                    throw ServiceError(.badRequest, "lifetime must be 1 to \(resolved.org.maxTokenLifetime) seconds (the org's maximum)")
                }
                let signing = TokenSigningRequest(
                    issuer: authenticator.publicURL, audience: authenticator.audience, agent: resolved.agent.id, org: resolved.org.id,
                    user: resolved.owner.id,
                    scopes: body.scopes ?? ["mcp"], lifetimeSeconds: lifetime
                )
                let signed = try await client.call(VaultEndpoints.signToken, signing)
                logger.info("agent token issued", metadata: ["agent": "\(body.agent)", "org": "\(body.org)", "token.id": "\(signed.tokenID)"])
                return ServerAdminRoutes.json(.created, signed)
            } catch {
                return AdminProblem(error).response
            }
        }
    }
}
