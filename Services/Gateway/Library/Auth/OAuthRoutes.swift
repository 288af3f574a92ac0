import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// The gateway's token endpoint, `POST /oauth/token`: the client-credentials grant (client id and
/// secret of an API key; form fields or HTTP Basic, RFC 6749 §2.3.1), token exchange (RFC 8693),
/// and for MCP clients that signed a user in (`AuthorizationServerRoutes`) the authorization-code
/// and refresh-token grants. Tokens come from the vault, for this gateway's audience.
package struct OAuthRoutes: Sendable {
    let authenticator: GatewayAuthenticator
    let client: ServiceClient
    let providerKeys: ProviderKeySets
    let revocations: RevocationList?
    let logger: Logger

    package init(authenticator: GatewayAuthenticator, client: ServiceClient, revocations: RevocationList?, logger: Logger) {
        self.authenticator = authenticator
        self.client = client
        self.revocations = revocations
        self.providerKeys = ProviderKeySets(logger: logger)
        self.logger = logger
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.post("/oauth/token") { request, _ in await token(request) }
    }

    struct AnyEncodable: Encodable {
        let encode: @Sendable (any Encoder) throws -> Void
        init(_ value: some Encodable & Sendable) { encode = { try value.encode(to: $0) } }
        func encode(to encoder: any Encoder) throws { try encode(encoder) }
    }

    static let tokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
    static let subjectTokenTypes: Set<String> = [
        "urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token", "urn:ietf:params:oauth:token-type:access_token",
    ]

    /// RFC 8693: a token from an identity provider an org trusts becomes a Warden agent token for
    /// the org's agent (named by the agent claim) acting for its user (the user claim's email).
    func exchange(_ fields: [String: String]) async -> Response {
        guard let subject = fields["subject_token"], !subject.isEmpty else {
            return Self.error(.badRequest, "invalid_request", "subject_token is required")
        }
        guard let type = fields["subject_token_type"], Self.subjectTokenTypes.contains(type) else {
            return Self.error(.badRequest, "invalid_request", "subject_token_type must name a JWT (urn:ietf:params:oauth:token-type:jwt)")
        }
        guard let issuer = FederatedTokenVerifier.claimedIssuer(subject) else {
            return Self.error(.badRequest, "invalid_grant", "the subject token is not a JWT with an issuer")
        }
        do throws(ServiceError) {
            let trusts = try await client.call(FederationEndpoints.forIssuer, IssuerReference(issuer: issuer)).issuers
            guard !trusts.isEmpty else { return Self.error(.badRequest, "invalid_grant", "the subject token's issuer is not trusted by any org") }
            // The trust whose audience the token carries; two orgs claiming the same token is refused.
            var matches: [(TrustedIssuer, ExternalClaims)] = []
            var lastRejection = "the subject token is not valid"
            for trust in trusts {
                do {
                    matches.append((trust, try await verify(subject, trust: trust)))
                } catch {
                    lastRejection = "\(error)"
                }
            }
            guard matches.count == 1, let (trust, claims) = matches.first else {
                return Self.error(.badRequest, "invalid_grant", matches.isEmpty ? lastRejection : "more than one org trusts this token; refused")
            }
            guard let email = claims.strings[trust.userClaim], let agentName = claims.strings[trust.agentClaim] else {
                return Self.error(.badRequest, "invalid_grant", "the subject token lacks the \(trust.userClaim) or \(trust.agentClaim) claim")
            }
            let resolved = try await client.call(FederationEndpoints.resolve, FederatedIdentity(org: trust.org, email: email, agentName: agentName))
            let roles = trust.rolesClaim.map { Array(claims.values(of: $0).prefix(64)) }
            let remaining = Int((claims.exp ?? 0) - Int64(Date().timeIntervalSince1970))
            let signed = try await client.call(
                VaultEndpoints.signToken,
                TokenSigningRequest(
                    issuer: authenticator.publicURL, audience: authenticator.audience, agent: resolved.agent.id, org: resolved.org.id,
                    user: resolved.owner.id,
                    scopes: ["mcp"], lifetimeSeconds: max(1, min(900, remaining, resolved.org.maxTokenLifetime)), roles: roles
                )
            )
            logger.info(
                "federated token exchanged",
                metadata: ["org": "\(resolved.org.id)", "agent": "\(resolved.agent.id)", "federation.issuer": "\(trust.issuer)"])
            let answer = TokenResponse(
                accessToken: signed.token, issuedTokenType: TokenResponse.accessTokenType,
                expiresIn: max(0, signed.expiresAt - Int64(Date().timeIntervalSince1970))
            )
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: (try? JSONEncoder().encode(answer)) ?? Data()))
            )
        } catch {
            if [.notFound, .forbidden].contains(error.code) {
                return Self.error(.badRequest, "invalid_grant", "the federated identity maps to no enabled agent: \(error.message)")
            }
            logger.warning("token exchange failed", metadata: ["error": "\(error.code.rawValue)"])
            return Self.error(.serviceUnavailable, "temporarily_unavailable", "tokens cannot be issued right now; try again")
        }
    }

    /// The provider's token verified with the trust's keys: its JWKS document, or the one at its
    /// JWKS URL (fetched again once when the token does not verify: the provider may have rotated).
    func verify(_ subject: String, trust: TrustedIssuer) async throws -> ExternalClaims {
        guard let url = trust.jwksURL else {
            return try await FederatedTokenVerifier.verify(subject, jwks: trust.jwks, issuer: trust.issuer, audience: trust.audience)
        }
        let cached = try await providerKeys.document(at: url)
        do throws(TokenRejection) {
            return try await FederatedTokenVerifier.verify(subject, jwks: cached, issuer: trust.issuer, audience: trust.audience)
        } catch  where error.cause == .badSignature {
            let fresh = try await providerKeys.document(at: url, stale: true)
            return try await FederatedTokenVerifier.verify(subject, jwks: fresh, issuer: trust.issuer, audience: trust.audience)
        }
    }

    /// A code or a refresh token of a public client (it names itself with client_id; PKCE binds
    /// the code to it). A reused code or refresh token also ends the agent's access tokens here.
    func grant(_ kind: TokenGrant.Kind, _ fields: [String: String], request: Request) async -> Response {
        var clientID = fields["client_id"]
        if clientID == nil, let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(header.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) }),
            let colon = decoded.firstIndex(of: ":")
        {
            clientID = String(decoded[..<colon]).removingPercentEncoding
        }
        guard let clientID, !clientID.isEmpty else { return Self.error(.unauthorized, "invalid_client", "client_id is required") }
        let grant = TokenGrant(
            kind: kind, clientID: clientID, code: fields["code"], codeVerifier: fields["code_verifier"], redirectURI: fields["redirect_uri"],
            refreshToken: fields["refresh_token"], resource: fields["resource"].map(normalizedResource), issuer: authenticator.publicURL)
        let outcome: TokenGrantOutcome
        do throws(ServiceError) {
            outcome = try await client.call(AuthorizationEndpoints.token, grant)
        } catch {
            logger.warning("token grant failed", metadata: ["error": "\(error.code.rawValue)", "grant": "\(kind.rawValue)"])
            return Self.error(.serviceUnavailable, "temporarily_unavailable", "tokens cannot be issued right now; try again")
        }
        if let revoked = outcome.revoked, let revocations {
            do {
                try await revocations.revoke(Revocation(kind: .subject, id: revoked.agent, at: Int64(Date().timeIntervalSince1970)))
            } catch {
                logger.error("cannot revoke the tokens of a reused grant", metadata: ["agent": "\(revoked.agent)", "error": "\(error)"])
            }
        }
        guard let accessToken = outcome.accessToken, outcome.error == nil else {
            return Self.error(.badRequest, outcome.error ?? "invalid_grant", outcome.errorDescription ?? "the grant is not valid")
        }
        let answer = TokenResponse(
            accessToken: accessToken, expiresIn: Int64(outcome.expiresIn ?? 0), refreshToken: outcome.refreshToken, scope: outcome.scope)
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: (try? JSONEncoder().encode(answer)) ?? Data())))
    }

    /// A resource as `/oauth/authorize` accepts it (a trailing slash is the same resource).
    func normalizedResource(_ resource: String) -> String {
        AuthorizationRequest.sameResource(resource, authenticator.audience) ? authenticator.audience : resource
    }

    /// Form fields of an `application/x-www-form-urlencoded` body.
    static func form(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String { String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    static func error(_ status: HTTPResponse.Status, _ code: String, _ description: String) -> Response {
        var response = GatewayAuthenticator.problem(status, code, description)
        if status == .unauthorized { response.headers[.wwwAuthenticate] = #"Basic realm="warden""# }
        return response
    }

    func token(_ request: Request) async -> Response {
        guard (request.headers[.contentType] ?? "").lowercased().hasPrefix("application/x-www-form-urlencoded") else {
            return Self.error(.badRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
        }
        guard let buffer = try? await request.body.collect(upTo: 16 << 10) else {
            return Self.error(.badRequest, "invalid_request", "the body is larger than 16 KiB")
        }
        let fields = Self.form(String(buffer: buffer))
        if fields["grant_type"] == Self.tokenExchange { return await exchange(fields) }
        if let kind = fields["grant_type"].flatMap(TokenGrant.Kind.init(rawValue:)) { return await grant(kind, fields, request: request) }
        guard fields["grant_type"] == "client_credentials" else {
            return Self.error(
                .badRequest, "unsupported_grant_type",
                "grant_type must be authorization_code, refresh_token, client_credentials or \(Self.tokenExchange)")
        }
        var clientID = fields["client_id"], secret = fields["client_secret"]
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("basic ") {
            guard let decoded = Data(base64Encoded: String(header.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) }),
                let colon = decoded.firstIndex(of: ":")
            else {
                return Self.error(.unauthorized, "invalid_client", "the Basic credentials are malformed")
            }
            clientID = String(decoded[..<colon]).removingPercentEncoding
            secret = String(decoded[decoded.index(after: colon)...]).removingPercentEncoding
        }
        guard let clientID, let secret, !clientID.isEmpty, !secret.isEmpty else {
            return Self.error(.unauthorized, "invalid_client", "client_id and client_secret are required")
        }
        let key = secret.hasPrefix("wdn_") ? secret : "wdn_\(clientID)_\(secret)"
        guard key.hasPrefix("wdn_\(clientID)_") else { return Self.error(.unauthorized, "invalid_client", "the client credentials are not valid") }
        do throws(ServiceError) {
            let signed = try await client.call(
                APIKeyEndpoints.exchange,
                APIKeyExchange(key: key, issuer: authenticator.publicURL, audience: authenticator.audience, lifetimeSeconds: 900)
            )
            let answer = TokenResponse(accessToken: signed.token, expiresIn: max(0, signed.expiresAt - Int64(Date().timeIntervalSince1970)))
            return Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: (try? JSONEncoder().encode(answer)) ?? Data()))
            )
        } catch {
            if error.code == .unauthorized { return Self.error(.unauthorized, "invalid_client", "the client credentials are not valid") }
            logger.warning("token exchange failed", metadata: ["error": "\(error.code.rawValue)"])
            return Self.error(.serviceUnavailable, "temporarily_unavailable", "tokens cannot be issued right now; try again")
        }
    }
}
