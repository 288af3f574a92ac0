import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Synchronization
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// The admin API's authentication, in one place for every admin route.
package struct AdminAccess: Sendable {
    let credential: AdminCredential?
    let authenticator: GatewayAuthenticator
    let adminKeys: AdminKeyVerifier?

    package init(credential: AdminCredential?, authenticator: GatewayAuthenticator, adminKeys: AdminKeyVerifier? = nil) {
        self.credential = credential
        self.authenticator = authenticator
        self.adminKeys = adminKeys
    }

    package enum Outcome: Sendable {
        case allowed(AdminPrincipal)
        case refused(Response)
    }

    /// Who asks, if anyone a credential backs; the record of an admin change names them
    /// (`AdminAuditMiddleware`).
    package func principal(_ request: Request) async -> Outcome {
        let outcome = await authenticate(request)
        if case .allowed(let principal) = outcome { AdminAuditMiddleware.asker?.principal.withLock { $0 = principal } }
        return outcome
    }

    private func authenticate(_ request: Request) async -> Outcome {
        guard let header = request.headers[.authorization], let bearer = BearerToken.from(header) else {
            return .refused(Self.unauthorized)
        }
        if let credential, credential.accepts(header) { return .allowed(.platform) }
        if bearer.hasPrefix("wda_"), let adminKeys {
            switch await adminKeys.check(bearer) {
            case .valid: return .allowed(.platform)
            case .invalid: return .refused(Self.unauthorized)
            case .unavailable:
                return .refused(AdminProblem(.unavailable, "admin keys cannot be checked right now; try again").response)
            }
        }
        if let claims = await authenticator.validateAdmin(bearer) { return .allowed(.org(claims.org, user: claims.sub)) }
        return .refused(Self.unauthorized)
    }

    /// The principal if it may act on `org` (nil: any org, i.e. platform-wide), else the refusal.
    package func require(_ request: Request, org: String?) async -> Outcome {
        switch await principal(request) {
        case .refused(let response): return .refused(response)
        case .allowed(let principal):
            if let org {
                // Another org's things are "not found": their existence is not revealed.
                guard principal.mayManage(org: org) else {
                    return .refused(AdminProblem(.notFound, "no org '\(org.prefix(32))'").response)
                }
            } else if !principal.isPlatform {
                return .refused(AdminProblem(.forbidden, "this needs the platform admin token").response)
            }
            return .allowed(principal)
        }
    }

    static var unauthorized: Response {
        var response = AdminProblem(.unauthorized, "an admin bearer token is required").response
        response.headers[.wwwAuthenticate] = #"Bearer realm="warden-admin""#
        return response
    }
}
