import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// The authentication stage of the MCP pipeline: bearer tokens validated locally against the
/// vault's public keys (fetched over NATS, kept, refreshed every minute and when an unknown key id
/// shows up), never forwarded downstream. Errors follow RFC 6750 and point clients at the
/// protected-resource metadata (RFC 9728).
package final class GatewayAuthenticator: Sendable {
    /// The gateway's public base URL: the token issuer; `<url>/mcp` is the audience.
    package let publicURL: String
    /// Refuse requests without a token (off only for local development until agents get tokens
    /// from `make up`).
    package let required: Bool
    let client: ServiceClient
    let revocations: RevocationList?
    /// mTLS identity from a trusted proxy's `X-Forwarded-Client-Cert` (nil: off, the header is ignored).
    let certificates: ClientCertificateTrust?
    let logger: Logger
    /// Raw API keys (by SHA-256 of the key) and client certificates (by `cert:<org>/<agent>`)
    /// recently checked with the vault and policy: (holder, key id, when).
    private let rawKeys = Mutex<[String: (agent: AuthenticatedAgent, keyID: String, checkedAt: Int64)]>([:])
    private let state = Mutex<
        (
            validator: AgentTokenValidator?, adminValidator: AgentTokenValidator?, approverValidator: AgentTokenValidator?, keys: [VerificationKey],
            fetchedAt: ContinuousClock.Instant?
        )
    >(
        (nil, nil, nil, [], nil)
    )

    package init(
        publicURL: String, required: Bool, client: ServiceClient, revocations: RevocationList?, certificates: ClientCertificateTrust? = nil,
        logger: Logger
    ) {
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.required = required
        self.client = client
        self.revocations = revocations
        self.certificates = certificates
        self.logger = logger
    }

    package var audience: String { publicURL + "/mcp" }
    /// The audience of org admin tokens: they open the admin API, never `/mcp`.
    package var adminAudience: String { publicURL + "/admin" }
    /// The audience of approver tokens: they open the approvals API and inbox, nothing else.
    package var approverAudience: String { publicURL + "/approvals" }
    /// The scope a token needs for `/mcp`.
    package static let requiredScope = "mcp"
    package var metadataURL: String { publicURL + "/.well-known/oauth-protected-resource" }

    /// The vault's public keys, refreshed when older than a minute (or `force`d).
    package func keys(force: Bool = false) async throws -> [VerificationKey] {
        let (cached, fetchedAt) = state.withLock { ($0.keys, $0.fetchedAt) }
        if !force, let fetchedAt, ContinuousClock.now - fetchedAt < .seconds(60), !cached.isEmpty { return cached }
        do {
            let published = try await client.call(VaultEndpoints.publicKeys, EmptyBody())
            let keys = published.keys.compactMap { key in Base64URL.decode(key.x).map { VerificationKey(kid: key.kid, rawPublicKey: $0) } }
            let validator = try await AgentTokenValidator(issuer: publicURL, audience: audience, keys: keys)
            let adminValidator = try await AgentTokenValidator(issuer: publicURL, audience: adminAudience, keys: keys)
            let approverValidator = try await AgentTokenValidator(issuer: publicURL, audience: approverAudience, keys: keys)
            state.withLock { $0 = (validator, adminValidator, approverValidator, keys, .now) }
            return keys
        } catch {
            // Keep validating with the keys we have; without any, nothing validates (fail closed).
            logger.warning("cannot fetch the token signing keys from the vault", metadata: ["error": "\(error)"])
            if cached.isEmpty { throw error }
            return cached
        }
    }

    package enum Outcome: Sendable {
        /// No token, and the configuration allows that (local development).
        case anonymous
        case agent(AuthenticatedAgent)
        /// The answer that refuses the request.
        case refused(Response)
    }

    /// `peer` is the connection's remote address: client-certificate headers count only from a
    /// trusted proxy. An explicit bearer credential wins over a forwarded certificate.
    package func authenticate(_ request: Request, peer: SocketAddress? = nil) async -> Outcome {
        guard let header = request.headers.value(.authorization) else {
            if let forwarded = request.headers.value(Self.clientCertificateField) {
                guard let certificates, certificates.trusts(peer: peer) else {
                    if certificates != nil {
                        logger.warning(
                            "ignored a client-certificate header from an untrusted address", metadata: ["peer": "\(peer?.ipAddress ?? "?")"])
                    }
                    guard required else { return .anonymous }
                    return .refused(
                        challenge(
                            TokenRejection.invalid("a bearer token is required (client-certificate headers are accepted only from trusted proxies)")))
                }
                return await certificateIdentity(forwarded, trust: certificates)
            }
            return required ? .refused(challenge(nil)) : .anonymous
        }
        guard let token = BearerToken.from(header) else {
            return .refused(challenge(TokenRejection.invalid("use the Bearer scheme")))
        }
        if token.hasPrefix("wdn_") { return await rawAPIKey(token) }
        var validator = state.withLock { $0.validator }
        if validator == nil {
            _ = try? await keys(force: true)
            validator = state.withLock { $0.validator }
        }
        guard let validator else {
            return .refused(Self.problem(.serviceUnavailable, "temporarily_unavailable", "token keys are unavailable; try again"))
        }
        // Fail closed: a replica that has not read the revocations yet accepts no token.
        guard revocations?.isReady ?? true else {
            return .refused(Self.problem(.serviceUnavailable, "temporarily_unavailable", "revocations are loading; try again"))
        }
        let isRevoked: (AgentTokenClaims) -> Bool = { self.revocations?.isRevoked($0) ?? false }
        do throws(TokenRejection) {
            let claims = try await validator.validate(token, isRevoked: isRevoked)
            guard claims.scopes.contains(Self.requiredScope) else {
                throw TokenRejection(.insufficientScope, "the token lacks the '\(Self.requiredScope)' scope")
            }
            return .agent(
                AuthenticatedAgent(
                    agent: claims.sub, org: claims.org, user: claims.usr, scopes: claims.scopes, tokenID: claims.jti, roles: claims.roles ?? [],
                    client: claims.clientID))
        } catch  where error.cause == .unknownKey && state.withLock({ $0.fetchedAt.map { ContinuousClock.now - $0 > .seconds(5) } ?? true }) {
            // A key rotated in since we last looked: fetch once, then decide.
            _ = try? await keys(force: true)
            if let fresh = state.withLock({ $0.validator }), let claims = try? await fresh.validate(token, isRevoked: isRevoked) {
                return .agent(
                    AuthenticatedAgent(
                        agent: claims.sub, org: claims.org, user: claims.usr, scopes: claims.scopes, tokenID: claims.jti, roles: claims.roles ?? [],
                        client: claims.clientID))
            }
            return .refused(challenge(error))
        } catch {
            return .refused(challenge(error))
        }
    }

    /// How long a raw key's check with the vault and policy is reused (revocations apply at once).
    static let rawKeyReuse: Int64 = 30

    /// A raw API key on `/mcp`, where its org allows that: checked with the vault and policy, then
    /// reused for `rawKeyReuse` seconds; key and agent revocations end it at once.
    func rawAPIKey(_ key: String) async -> Outcome {
        guard revocations?.isReady ?? true else {
            return .refused(Self.problem(.serviceUnavailable, "temporarily_unavailable", "revocations are loading; try again"))
        }
        let digest = SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
        let now = Int64(Date().timeIntervalSince1970)
        if let known = rawKeys.withLock({ $0[digest] }), now - known.checkedAt < Self.rawKeyReuse {
            let revoked =
                revocations.map { $0.isAPIKeyRevoked(known.keyID) || ($0.agentRevokedAt(known.agent.agent).map { $0 >= known.checkedAt } ?? false) }
                ?? false
            if !revoked { return .agent(known.agent) }
            _ = rawKeys.withLock { $0.removeValue(forKey: digest) }
            return .refused(challenge(TokenRejection.invalid("the API key was revoked")))
        }
        do throws(ServiceError) {
            let holder = try await client.call(APIKeyEndpoints.check, APIKeyPresentation(key: key))
            let resolved = try await client.call(PrincipalEndpoints.resolveAgent, AgentReference(org: holder.org, agent: holder.agent))
            guard resolved.org.rawAPIKeysOnMCP else {
                return .refused(challenge(TokenRejection.invalid("this org does not accept raw API keys on /mcp: exchange the key at /oauth/token")))
            }
            guard revocations?.isAPIKeyRevoked(holder.id) != true else {
                return .refused(challenge(TokenRejection.invalid("the API key was revoked")))
            }
            guard holder.scopes.contains(Self.requiredScope) else {
                return .refused(challenge(TokenRejection(.insufficientScope, "the API key lacks the '\(Self.requiredScope)' scope")))
            }
            let agent = AuthenticatedAgent(
                agent: resolved.agent.id, org: resolved.org.id, user: resolved.owner.id, scopes: Set(holder.scopes), tokenID: "apikey:" + holder.id,
                client: holder.id)
            rawKeys.withLock { cache in
                if cache.count >= 10_000 { cache.removeAll() }
                cache[digest] = (agent, holder.id, now)
            }
            return .agent(agent)
        } catch {
            if [.unauthorized, .forbidden, .notFound].contains(error.code) {
                return .refused(challenge(TokenRejection.invalid("the API key is not valid")))
            }
            return .refused(Self.problem(.serviceUnavailable, "temporarily_unavailable", "API keys cannot be checked right now; try again"))
        }
    }

    static let clientCertificateField = HTTPField.Name(ClientCertificateTrust.header)!

    /// An agent named by a client certificate a trusted proxy verified: resolved with policy (the
    /// agent must exist and be enabled, its owner too), reused for `rawKeyReuse` seconds; revoking
    /// the agent ends it at once.
    func certificateIdentity(_ header: String, trust: ClientCertificateTrust) async -> Outcome {
        let named: (org: String, agent: String)
        switch trust.identity(fromHeader: header) {
        case .success(let identity): named = identity
        case .failure(let rejection): return .refused(challenge(TokenRejection.invalid(rejection.description)))
        }
        guard revocations?.isReady ?? true else {
            return .refused(Self.problem(.serviceUnavailable, "temporarily_unavailable", "revocations are loading; try again"))
        }
        let cacheKey = "cert:\(named.org)/\(named.agent)"
        let now = Int64(Date().timeIntervalSince1970)
        if let known = rawKeys.withLock({ $0[cacheKey] }), now - known.checkedAt < Self.rawKeyReuse {
            if revocations?.agentRevokedAt(known.agent.agent).map({ $0 >= known.checkedAt }) != true { return .agent(known.agent) }
            _ = rawKeys.withLock { $0.removeValue(forKey: cacheKey) }
        }
        do throws(ServiceError) {
            let resolved = try await client.call(PrincipalEndpoints.resolveAgent, AgentReference(org: named.org, agent: named.agent))
            let agent = AuthenticatedAgent(
                agent: resolved.agent.id, org: resolved.org.id, user: resolved.owner.id, scopes: [Self.requiredScope],
                tokenID: "mtls:" + resolved.agent.id
            )
            rawKeys.withLock { cache in
                if cache.count >= 10_000 { cache.removeAll() }
                cache[cacheKey] = (agent, "", now)
            }
            return .agent(agent)
        } catch {
            if [.unauthorized, .forbidden, .notFound].contains(error.code) {
                return .refused(challenge(TokenRejection.invalid("the client certificate names no enabled agent of org '\(named.org.prefix(32))'")))
            }
            return .refused(
                Self.problem(.serviceUnavailable, "temporarily_unavailable", "client certificates cannot be checked right now; try again"))
        }
    }

    /// The org admin an admin token stands for, or nil when it is not a valid, unrevoked admin token.
    package func validateAdmin(_ token: String) async -> AgentTokenClaims? {
        if state.withLock({ $0.adminValidator }) == nil { _ = try? await keys(force: true) }
        guard let validator = state.withLock({ $0.adminValidator }), revocations?.isReady ?? true else { return nil }
        guard let claims = try? await validator.validate(token, isRevoked: { self.revocations?.isRevoked($0) ?? false }),
            claims.scopes.contains("admin")
        else {
            return nil
        }
        return claims
    }

    /// The claims of a valid, unrevoked agent token for `/mcp` (revocation and introspection).
    package func validateAgent(_ token: String) async -> AgentTokenClaims? {
        if state.withLock({ $0.validator }) == nil { _ = try? await keys(force: true) }
        guard let validator = state.withLock({ $0.validator }), revocations?.isReady ?? true else { return nil }
        return try? await validator.validate(token, isRevoked: { self.revocations?.isRevoked($0) ?? false })
    }

    /// The approver an approver token stands for, or nil when it is not a valid, unrevoked one.
    package func validateApprover(_ token: String) async -> AgentTokenClaims? {
        if state.withLock({ $0.approverValidator }) == nil { _ = try? await keys(force: true) }
        guard let validator = state.withLock({ $0.approverValidator }), revocations?.isReady ?? true else { return nil }
        guard let claims = try? await validator.validate(token, isRevoked: { self.revocations?.isRevoked($0) ?? false }),
            claims.scopes.contains("approve")
        else {
            return nil
        }
        return claims
    }

    /// 401 (or 403 for scopes) with `WWW-Authenticate` naming the metadata document.
    func challenge(_ rejection: TokenRejection?) -> Response {
        // The scope to ask for, on every challenge (MCP clients request it; step-up on insufficient_scope).
        var parameters = [#"resource_metadata="\#(metadataURL)""#, #"scope="\#(Self.requiredScope)""#]
        if let rejection {
            parameters.insert(#"error="\#(rejection.code.rawValue)""#, at: 0)
            parameters.insert(#"error_description="\#(rejection.description.replacingOccurrences(of: "\"", with: "'"))""#, at: 1)
        }
        let status: HTTPResponse.Status = rejection?.code == .insufficientScope ? .forbidden : .unauthorized
        var response = Self.problem(status, rejection?.code.rawValue ?? "invalid_request", rejection?.description ?? "a bearer token is required")
        response.headers[.wwwAuthenticate] = "Bearer " + parameters.joined(separator: ", ")
        return response
    }

    static func problem(_ status: HTTPResponse.Status, _ code: String, _ description: String) -> Response {
        let body = (try? JSONEncoder().encode(["error": code, "error_description": description])) ?? Data()
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    // MARK: Discovery

    /// `/.well-known/jwks.json` and `/.well-known/oauth-protected-resource` (RFC 9728).
    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.get("/.well-known/jwks.json") { _, _ -> Response in
            guard let keys = try? await self.keys() else {
                return Self.problem(.serviceUnavailable, "temporarily_unavailable", "token keys are unavailable; try again")
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "max-age=60"],
                body: .init(byteBuffer: ByteBuffer(bytes: VerificationKey.jwks(keys))))
        }
        @Sendable func resourceMetadata() -> Response {
            let metadata: [String: JSONField] = [
                "resource": .string(self.audience),
                "authorization_servers": .strings([self.publicURL]),
                "bearer_methods_supported": .strings(["header"]),
                "scopes_supported": .strings([Self.requiredScope, "offline_access"]),
                "jwks_uri": .string(self.publicURL + "/.well-known/jwks.json"),
                "resource_name": .string("Warden MCP gateway"),
            ]
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: (try? encoder.encode(metadata)) ?? Data())))
        }
        // RFC 9728 §3.1: the document for resource `<base>/mcp` is also at the path-inserted address.
        router.get("/.well-known/oauth-protected-resource/mcp") { _, _ -> Response in resourceMetadata() }
        router.get("/.well-known/oauth-protected-resource") { _, _ -> Response in resourceMetadata() }
    }

    enum JSONField: Encodable {
        case string(String)
        case strings([String])

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let value): try container.encode(value)
            case .strings(let value): try container.encode(value)
            }
        }
    }
}
