import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// The authorization server through the admin API: an org's pre-registered MCP clients, whether
/// its users may use dynamically registered ones, users' passwords and their consents.
///
/// - `POST /admin/v1/authorization/clients` `{org, name, redirectURIs}`, `GET …/clients?org=`, `DELETE …/clients?org=&id=`
/// - `GET /admin/v1/authorization/settings?org=`, `PUT …/settings` `{org, dynamicClients}`
/// - `PUT /admin/v1/authorization/provider` `{org, issuer, clientID, clientSecret?, scopes?, emailClaim?}`, `GET|DELETE …/provider?org=`
/// - `PUT /admin/v1/orgs/:org/users/:id/password` `{password}` (`null` removes it)
/// - `GET /admin/v1/orgs/:org/users/:id/consents`, `DELETE …/consents?client=` (its tokens revoked, its agent disabled)
package struct AuthorizationAdminRoutes: Sendable {
    package static let path = "/admin/v1/authorization"
    let client: ServiceClient
    let revocations: RevocationList?
    let access: AdminAccess
    let logger: Logger

    package init(client: ServiceClient, revocations: RevocationList?, access: AdminAccess, logger: Logger) {
        self.client = client
        self.revocations = revocations
        self.access = access
        self.logger = logger
    }

    struct ClientBody: Decodable {
        var org: String
        var name: String
        var redirectURIs: [String]
    }

    struct PasswordBody: Decodable {
        var password: String?
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.post(RouterPath(Self.path + "/clients")) { request, _ -> Response in
            guard let body: ClientBody = await AdminAccess.decode(request) else {
                return AdminProblem(.invalid, "the body must be JSON with org, name and redirectURIs").response
            }
            let name = AuthorizationPages.plain(body.name, limit: 100)
            guard !name.isEmpty else { return AdminProblem(.invalid, "a client needs a name (shown on the consent page)").response }
            guard !body.redirectURIs.isEmpty, body.redirectURIs.count <= 20 else {
                return AdminProblem(.invalid, "a client has 1 to 20 redirect URIs").response
            }
            for uri in body.redirectURIs {
                if let problem = RedirectURI.problem(uri) { return AdminProblem(.invalid, problem).response }
            }
            let id = "wdc_" + Base64URL.encode((0..<18).map { _ in UInt8.random(in: 0...255) })
            return await access.answer(request, org: body.org) { _ in
                try await client.call(
                    AuthorizationEndpoints.registerClient,
                    AuthorizationClient(id: id, kind: .registered, name: name, redirectURIs: body.redirectURIs, org: body.org))
            }
        }
        router.get(RouterPath(Self.path + "/clients")) { request, _ -> Response in
            let org = request.uri.queryParameters["org"].map(String.init)
            return await access.answer(request, org: org) { _ in
                try await client.call(AuthorizationEndpoints.listClients, OrgReference(org: org ?? ""))
            }
        }
        router.delete(RouterPath(Self.path + "/clients")) { request, _ -> Response in
            guard let id = request.uri.queryParameters["id"].map(String.init), !id.isEmpty else {
                return AdminProblem(.invalid, "name the client: ?id=").response
            }
            let org = request.uri.queryParameters["org"].map(String.init)
            return await access.answer(request, org: org) { _ in
                try await client.call(AuthorizationEndpoints.removeClient, AuthorizationClientReference(id: id, org: org))
            }
        }
        router.get(RouterPath(Self.path + "/settings")) { request, _ -> Response in
            guard let org = request.uri.queryParameters["org"].map(String.init), !org.isEmpty else {
                return AdminProblem(.invalid, "name the org: ?org=").response
            }
            return await access.answer(request, org: org) { _ in try await client.call(AuthorizationEndpoints.settings, OrgReference(org: org)) }
        }
        router.put(RouterPath(Self.path + "/settings")) { request, _ -> Response in
            guard let body: SignInSettings = await AdminAccess.decode(request) else {
                return AdminProblem(.invalid, "the body must be JSON with org and dynamicClients (true or false)").response
            }
            return await access.answer(request, org: body.org) { _ in try await client.call(AuthorizationEndpoints.setSettings, body) }
        }
        router.put(RouterPath(Self.path + "/provider")) { request, _ -> Response in
            guard let body: SignInProviderSettings = await AdminAccess.decode(request) else {
                return AdminProblem(.invalid, "the body must be JSON with org, issuer, clientID and optional clientSecret, scopes, emailClaim")
                    .response
            }
            return await access.answer(request, org: body.org) { _ in try await client.call(AuthorizationEndpoints.setProvider, body) }
        }
        router.get(RouterPath(Self.path + "/provider")) { request, _ -> Response in
            guard let org = request.uri.queryParameters["org"].map(String.init), !org.isEmpty else {
                return AdminProblem(.invalid, "name the org: ?org=").response
            }
            return await access.answer(request, org: org) { _ in try await client.call(AuthorizationEndpoints.provider, OrgReference(org: org)) }
        }
        router.delete(RouterPath(Self.path + "/provider")) { request, _ -> Response in
            guard let org = request.uri.queryParameters["org"].map(String.init), !org.isEmpty else {
                return AdminProblem(.invalid, "name the org: ?org=").response
            }
            return await access.answer(request, org: org) { _ in try await client.call(AuthorizationEndpoints.removeProvider, OrgReference(org: org))
            }
        }
        router.put("/admin/v1/orgs/:org/users/:id/password") { request, context -> Response in
            let org = context.parameters.get("org") ?? "", user = context.parameters.get("id") ?? ""
            guard let body: PasswordBody = await AdminAccess.decode(request) else {
                return AdminProblem(.invalid, "the body must be JSON with password (a string, or null to remove it)").response
            }
            return await access.answer(request, org: org) { _ in
                try await client.call(AuthorizationEndpoints.setPassword, PasswordSetting(org: org, user: user, password: body.password))
            }
        }
        router.get("/admin/v1/orgs/:org/users/:id/consents") { request, context -> Response in
            let org = context.parameters.get("org") ?? "", user = context.parameters.get("id") ?? ""
            return await access.answer(request, org: org) { _ in
                try await client.call(AuthorizationEndpoints.consents, ConsentOwner(org: org, user: user))
            }
        }
        router.delete("/admin/v1/orgs/:org/users/:id/consents") { request, context -> Response in
            let org = context.parameters.get("org") ?? "", user = context.parameters.get("id") ?? ""
            guard let clientID = request.uri.queryParameters["client"].map(String.init), !clientID.isEmpty else {
                return AdminProblem(.invalid, "name the client: ?client=").response
            }
            return await access.answer(request, org: org) { _ in
                let revoked = try await client.call(
                    AuthorizationEndpoints.withdrawConsent, ConsentReference(owner: ConsentOwner(org: org, user: user), clientID: clientID))
                if let agent = revoked.agent, let revocations {
                    try await revocations.revoke(Revocation(kind: .subject, id: agent.agent, at: Int64(Date().timeIntervalSince1970)))
                }
                return revoked
            }
        }
    }
}
