import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Synchronization
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// Who is calling the admin API: the platform operator (`WARDEN_ADMIN_TOKEN`, or an admin key
/// such as the one the bootstrap made) or an org's admin (a token the vault signed for the admin audience,
/// issued to an owner or admin of that org). An org admin sees and changes its own org only.
public enum AdminPrincipal: Sendable, Equatable {
    case platform
    case org(String, user: String)

    public func mayManage(org: String) -> Bool {
        switch self {
        case .platform: true
        case .org(let own, _): own == org
        }
    }

    public var isPlatform: Bool { self == .platform }
}

/// The admin API's authentication, in one place for every admin route.
public struct AdminAccess: Sendable {
    let credential: AdminCredential?
    let authenticator: GatewayAuthenticator
    let adminKeys: AdminKeyVerifier?

    public init(credential: AdminCredential?, authenticator: GatewayAuthenticator, adminKeys: AdminKeyVerifier? = nil) {
        self.credential = credential
        self.authenticator = authenticator
        self.adminKeys = adminKeys
    }

    public enum Outcome: Sendable {
        case allowed(AdminPrincipal)
        case refused(Response)
    }

    public func principal(_ request: Request) async -> Outcome {
        guard let header = request.headers[.authorization], header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            return .refused(Self.unauthorized)
        }
        if let credential, credential.accepts(header) { return .allowed(.platform) }
        let bearer = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        if bearer.hasPrefix("wda_"), let adminKeys {
            switch await adminKeys.check(bearer) {
            case .valid: return .allowed(.platform)
            case .invalid: return .refused(Self.unauthorized)
            case .unavailable: return .refused(ServerAdminRoutes.problem(.serviceUnavailable, "unavailable", "admin keys cannot be checked right now; try again"))
            }
        }
        if let claims = await authenticator.validateAdmin(String(header.dropFirst(7))) { return .allowed(.org(claims.org, user: claims.sub)) }
        return .refused(Self.unauthorized)
    }

    /// The principal if it may act on `org` (nil: any org, i.e. platform-wide), else the refusal.
    public func require(_ request: Request, org: String?) async -> Outcome {
        switch await principal(request) {
        case .refused(let response): return .refused(response)
        case .allowed(let principal):
            if let org {
                // Another org's things are "not found": their existence is not revealed.
                guard principal.mayManage(org: org) else { return .refused(ServerAdminRoutes.problem(.notFound, "not_found", "no org '\(org.prefix(32))'")) }
            } else if !principal.isPlatform {
                return .refused(ServerAdminRoutes.problem(.forbidden, "forbidden", "this needs the platform admin token"))
            }
            return .allowed(principal)
        }
    }

    static var unauthorized: Response {
        var response = ServerAdminRoutes.problem(.unauthorized, "unauthorized", "an admin bearer token is required")
        response.headers[.wwwAuthenticate] = #"Bearer realm="warden-admin""#
        return response
    }
}

/// Platform admin keys (`wda_…`), checked with the vault and reused for 30 seconds; revoking one
/// drops it on every gateway at once (revocation broadcast, kind `api_key`).
public final class AdminKeyVerifier: Sendable {
    let client: ServiceClient
    let revocations: RevocationList
    /// By SHA-256 of the key: (key id, when checked).
    private let checked = Mutex<[String: (id: String, at: ContinuousClock.Instant)]>([:])

    public init(client: ServiceClient, revocations: RevocationList) {
        self.client = client
        self.revocations = revocations
    }

    public enum Verdict: Sendable { case valid, invalid, unavailable }

    public func check(_ key: String) async -> Verdict {
        guard revocations.isReady else { return .unavailable }
        let digest = SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
        if let known = checked.withLock({ $0[digest] }), ContinuousClock.now - known.at < .seconds(30) {
            if !revocations.isAPIKeyRevoked(known.id) { return .valid }
            _ = checked.withLock { $0.removeValue(forKey: digest) }
            return .invalid
        }
        do throws(ServiceError) {
            let id = try await client.call(AdminKeyEndpoints.check, APIKeyPresentation(key: key)).id
            guard !revocations.isAPIKeyRevoked(id) else { return .invalid }
            checked.withLock { cache in
                if cache.count >= 1_000 { cache.removeAll() }
                cache[digest] = (id, .now)
            }
            return .valid
        } catch {
            return error.code == .unauthorized ? .invalid : .unavailable
        }
    }
}
