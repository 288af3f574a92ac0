import Foundation
import Hummingbird
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// Who calls the approvers' API: an approver token (audience `<url>/approvals`, scope `approve`)
/// as a bearer token, for a user who is still enabled; their role is read now, so a user demoted
/// since the token was issued decides only what their new role may.
package struct ApproverAccess: Sendable {
    let authenticator: GatewayAuthenticator
    let client: ServiceClient

    package init(authenticator: GatewayAuthenticator, client: ServiceClient) {
        self.authenticator = authenticator
        self.client = client
    }

    package enum Outcome: Sendable {
        case allowed(Approver)
        case refused(Response)
    }

    package func approver(_ request: Request) async -> Outcome {
        guard let token = Self.bearer(request) else { return .refused(Self.unauthorized) }
        return await approver(token: token)
    }

    /// The request's bearer token, if any.
    static func bearer(_ request: Request) -> String? {
        request.headers[.authorization].flatMap(BearerToken.from)
    }

    package func approver(token: String) async -> Outcome {
        guard let claims = await authenticator.validateApprover(token) else { return .refused(Self.unauthorized) }
        do throws(ServiceError) {
            let users = try await client.call(PrincipalEndpoints.listUsers, OrgReference(org: claims.org)).users
            guard let user = users.first(where: { $0.id == claims.sub }), !user.disabled else { return .refused(Self.unauthorized) }
            return .allowed(Approver(org: user.org, user: user.id, role: user.role))
        } catch {
            return .refused(AdminProblem(.unavailable, "approvers cannot be checked right now; try again").response)
        }
    }

    static var unauthorized: Response {
        var response = AdminProblem(.unauthorized, "an approver token is required (warden user token --org ORG USER)").response
        response.headers[.wwwAuthenticate] = #"Bearer realm="warden-approvals""#
        return response
    }
}
