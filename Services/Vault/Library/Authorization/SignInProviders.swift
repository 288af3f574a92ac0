import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// An org's own OpenID Connect provider for signing in at the authorization server's pages: Warden
/// is its client (authorization code with PKCE, a nonce, and the client secret if it has one). The
/// provider's record — endpoints discovered from its issuer, client id and secret — is sealed
/// among the org's secrets (`oauth/_sign-in/provider`, which only these endpoints read or write).
/// A sign-in waits between its start and the provider's callback in `authz_federation` (state
/// kept as a digest, single use, 10 minutes, bound to the browser that started it).
package struct SignInProviders: Sendable {
    let secrets: SecretStore
    let database: DatabasePool
    let signIns: SignIns
    let client: ServiceClient
    let allowsLoopbackHTTP: Bool
    let audit: @Sendable (AuditEvent) async -> Void
    let logger: Logger

    static let path = OAuthPaths.client("_sign-in")
    static let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    package static let migration = Migration(
        version: 9,
        name: "federated_sign_in",
        statements: [
            """
            CREATE TABLE authz_federation (
                state_hash bytea PRIMARY KEY, org text NOT NULL, binding_hash bytea NOT NULL, verifier text NOT NULL, nonce text NOT NULL,
                carried text NOT NULL, expires_at timestamptz NOT NULL
            )
            """
        ]
    )

    struct Record: Codable {
        var issuer: String
        var clientID: String
        var clientSecret: String?
        var authorizeURL: String
        var tokenURL: String
        var jwksURL: String
        var scopes: [String]
        var emailClaim: String
        var rolesClaim: String?
    }

    struct Discovery: Decodable {
        var issuer: String
        var authorizationEndpoint: String
        var tokenEndpoint: String
        var jwksURI: String

        enum CodingKeys: String, CodingKey {
            case issuer, authorizationEndpoint = "authorization_endpoint", tokenEndpoint = "token_endpoint", jwksURI = "jwks_uri"
        }
    }

    // MARK: Settings

    package func set(_ settings: SignInProviderSettings) async throws -> SignInProviderView {
        // The issuer as the provider spells it (Auth0's ends with '/'); discovery is under it.
        let issuer = settings.issuer
        try check(issuer, "the issuer")
        func printable(_ text: String) -> Bool { !text.isEmpty && text.unicodeScalars.allSatisfy { (0x21...0x7E).contains($0.value) } }
        guard printable(settings.clientID), settings.clientID.utf8.count <= 512 else {
            throw ServiceError(.badRequest, "the client id must be 1 to 512 printable characters without spaces")
        }
        if let secret = settings.clientSecret, !printable(secret) || secret.utf8.count > 4096 {
            throw ServiceError(.badRequest, "the client secret must be 1 to 4096 printable characters without spaces")
        }
        let scopes = settings.scopes ?? ["openid", "email", "profile"]
        guard scopes.contains("openid"), scopes.count <= 32, scopes.allSatisfy(printable) else {
            throw ServiceError(.badRequest, "the scopes include openid and are printable words")
        }
        let discovery = try await discover(issuer)
        let previous = try? await record(org: settings.org)
        // The stored secret stays only for the same provider and client: an admin who never saw it
        // cannot have it sent to a token endpoint of their choosing.
        let sameClient =
            previous.map { $0.issuer == issuer && $0.clientID == settings.clientID && $0.tokenURL == discovery.tokenEndpoint } ?? false
        let record = Record(
            issuer: issuer, clientID: settings.clientID, clientSecret: settings.clientSecret ?? (sameClient ? previous?.clientSecret : nil),
            authorizeURL: discovery.authorizationEndpoint, tokenURL: discovery.tokenEndpoint, jwksURL: discovery.jwksURI, scopes: scopes,
            emailClaim: settings.emailClaim ?? "email", rolesClaim: settings.rolesClaim)
        let value = try JSONEncoder().encode(record).base64EncodedString()
        _ = try await secrets.write(SecretWrite(org: settings.org, path: Self.path, value: value, actor: "sign-in-provider"))
        return Self.view(record, org: settings.org)
    }

    package func view(org: String) async throws -> SignInProviderView {
        Self.view(try await record(org: org), org: org)
    }

    package func remove(org: String) async throws {
        _ = try await record(org: org)
        _ = try await secrets.destroy(SecretDestruction(org: org, path: Self.path, actor: "sign-in-provider"))
    }

    /// Whether the org signs in at its provider (and so not with passwords).
    /// Whether the org signs in at its provider. Only "no provider" counts as no: a record that
    /// cannot be read refuses passwords too (fails closed).
    package func isFederated(org: String) async -> Bool {
        do {
            _ = try await record(org: org)
            return true
        } catch let error as ServiceError where error.code == .notFound {
            return false
        } catch {
            return true
        }
    }

    func record(org: String) async throws -> Record {
        let value: SecretValue
        do {
            value = try await secrets.read(SecretReference(org: org, path: Self.path))
        } catch let error as ServiceError where error.code == .notFound {
            throw ServiceError(.notFound, "org '\(org.prefix(32))' has no sign-in provider (its users sign in with passwords)")
        }
        guard let data = Data(base64Encoded: value.value), let record = try? JSONDecoder().decode(Record.self, from: data) else {
            throw ServiceError(.internal, "the sign-in provider's record of org '\(org.prefix(32))' cannot be read")
        }
        return record
    }

    static func view(_ record: Record, org: String) -> SignInProviderView {
        SignInProviderView(
            org: org, issuer: record.issuer, clientID: record.clientID, hasClientSecret: record.clientSecret != nil,
            authorizeURL: record.authorizeURL,
            scopes: record.scopes, emailClaim: record.emailClaim, rolesClaim: record.rolesClaim)
    }

    /// An https URL at a public host (plain http on loopback only for providers under test): the
    /// vault posts codes and its client secret there.
    func check(_ url: String, _ what: String) throws(ServiceError) {
        guard let parsed = URL(string: url), let host = parsed.host?.lowercased(), !host.isEmpty, parsed.user == nil, parsed.fragment == nil,
            url.utf8.count <= 2048
        else { throw ServiceError(.badRequest, "\(what) must be an https URL without credentials or fragment") }
        let loopback = ["localhost", "::1", "[::1]"].contains(host) || host.hasPrefix("127.")
        switch parsed.scheme {
        case "https" where !loopback && !OAuthClientRecord.isPrivateAddress(host): return
        case "http" where loopback && allowsLoopbackHTTP: return
        default: throw ServiceError(.badRequest, "\(what) must be an https URL at a public host (not a loopback, private or link-local address)")
        }
    }

    func discover(_ issuer: String) async throws -> Discovery {
        let base = issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer
        let data = try await fetch(base + "/.well-known/openid-configuration", what: "the provider's discovery document")
        guard let discovery = try? JSONDecoder().decode(Discovery.self, from: data) else {
            throw ServiceError(.badRequest, "the provider's discovery document lacks authorization_endpoint, token_endpoint or jwks_uri")
        }
        guard discovery.issuer == issuer else { throw ServiceError(.badRequest, "the provider's discovery document names another issuer") }
        try check(discovery.authorizationEndpoint, "its authorization_endpoint")
        try check(discovery.tokenEndpoint, "its token_endpoint")
        try check(discovery.jwksURI, "its jwks_uri")
        return discovery
    }

    func fetch(_ url: String, what: String) async throws -> Data {
        do {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Accept", value: "application/json")
            let response = try await Self.http.execute(request, timeout: .seconds(10))
            guard response.status == .ok else { throw ServiceError(.badRequest, "\(what) answered HTTP \(response.status.code)") }
            return Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
        } catch let error as ServiceError {
            throw error
        } catch {
            throw ServiceError(.unavailable, "\(what) cannot be fetched (\(type(of: error)))")
        }
    }

    // MARK: Signing in

    package func start(_ request: FederatedSignInStart) async throws -> FederatedSignInRedirect {
        let record = try await record(org: request.org)
        let state = SignIns.randomToken(), nonce = SignIns.randomToken(), verifier = SignIns.randomToken() + SignIns.randomToken()
        let carried = String(decoding: try JSONEncoder().encode(request.carried), as: UTF8.self)
        guard carried.utf8.count <= 16 << 10 else { throw ServiceError(.badRequest, "the authorization request is too large") }
        try await database.query(
            """
            INSERT INTO authz_federation (state_hash, org, binding_hash, verifier, nonce, carried, expires_at)
            VALUES (\(SignIns.digest(state)), \(request.org), \(SignIns.digest(request.binding)), \(verifier), \(nonce), \(carried),
                \(Date().addingTimeInterval(600)))
            """, logger: logger)
        try await database.query("DELETE FROM authz_federation WHERE expires_at < now() - interval '1 hour'", logger: logger)
        let challenge = Base64URL.encode(Array(SHA256.hash(data: Data(verifier.utf8))))
        var components = URLComponents(string: record.authorizeURL)
        var items = components?.queryItems ?? []
        items += [
            URLQueryItem(name: "response_type", value: "code"), URLQueryItem(name: "client_id", value: record.clientID),
            URLQueryItem(name: "redirect_uri", value: request.redirectURI), URLQueryItem(name: "scope", value: record.scopes.joined(separator: " ")),
            URLQueryItem(name: "state", value: state), URLQueryItem(name: "nonce", value: nonce),
            URLQueryItem(name: "code_challenge", value: challenge), URLQueryItem(name: "code_challenge_method", value: "S256"),
        ]
        components?.percentEncodedQuery = items.map { "\($0.name)=\(OAuthTokenEndpoint.formEncode($0.value ?? ""))" }.joined(separator: "&")
        guard let url = components?.string else { throw ServiceError(.internal, "the provider's authorization URL cannot be built") }
        return FederatedSignInRedirect(url: url)
    }

    package func finish(_ request: FederatedSignInFinish) async throws -> FederatedSignInResult {
        var pending: (org: String, binding: ByteBuffer, verifier: String, nonce: String, carried: String)?
        for try await row in try await database.query(
            """
            DELETE FROM authz_federation WHERE state_hash = \(SignIns.digest(request.state)) AND expires_at > now()
            RETURNING org, binding_hash, verifier, nonce, carried
            """, logger: logger
        ).decode((String, ByteBuffer, String, String, String).self) {
            pending = row
        }
        guard let pending else { throw ServiceError(.unauthorized, "the sign-in expired or was already completed; sign in again") }
        guard pending.binding == SignIns.digest(request.binding) else {
            throw ServiceError(.unauthorized, "the sign-in was started in another browser; sign in again")
        }
        // Each org has its own callback: a code from another org's provider is not sent to this one's.
        guard request.org == pending.org else { throw ServiceError(.unauthorized, "the sign-in was started for another organization") }
        guard let code = request.code, request.error == nil else {
            throw ServiceError(
                .unauthorized, "the identity provider refused the sign-in (\(OAuthTokenEndpoint.printable(request.error ?? "no code", 64)))")
        }
        let record = try await record(org: pending.org)
        // RFC 9207: a provider that names itself in its answer must name this one.
        if let iss = request.issuer, iss != record.issuer { throw ServiceError(.unauthorized, "the answer came from another identity provider") }
        let tokens: OAuthTokenResponse
        do {
            tokens = try await OAuthTokenEndpoint().exchange(
                code: code, verifier: pending.verifier, redirectURI: request.redirectURI,
                client: OAuthClientRecord(
                    clientID: record.clientID, clientSecret: record.clientSecret, authorizeURL: record.authorizeURL, tokenURL: record.tokenURL,
                    scopes: record.scopes))
        } catch .refused(let error, let description) {
            throw ServiceError(.unauthorized, "the identity provider did not accept the sign-in: \(error)\(description.map { " (\($0))" } ?? "")")
        } catch {
            throw ServiceError(.unavailable, "the identity provider's token endpoint cannot be reached; try again")
        }
        guard let idToken = tokens.idToken else { throw ServiceError(.unauthorized, "the identity provider sent no ID token") }
        let jwks = String(decoding: try await fetch(record.jwksURL, what: "the provider's keys"), as: UTF8.self)
        let claims: ExternalClaims
        do {
            claims = try await FederatedTokenVerifier.verify(idToken, jwks: jwks, issuer: record.issuer, audience: record.clientID)
        } catch {
            throw ServiceError(.unauthorized, "the identity provider's ID token is not valid: \(error.description)")
        }
        guard claims.strings["nonce"] == pending.nonce else { throw ServiceError(.unauthorized, "the ID token's nonce does not match") }
        guard let email = claims.strings[record.emailClaim], !email.isEmpty else {
            throw ServiceError(.unauthorized, "the ID token has no \(record.emailClaim) claim")
        }
        // An address the provider has not verified proves nothing about who signs in.
        if claims.flags["email_verified"] == false || claims.strings["email_verified"] == "false" {
            throw ServiceError(.unauthorized, "the identity provider has not verified \(email)")
        }
        let roles = record.rolesClaim.map { Array(claims.values(of: $0).prefix(64)) }
        let session = try await signIns.open(
            org: pending.org, email: email, method: "identity provider \(record.issuer)", roles: roles, address: request.address)
        let carried = (try? JSONDecoder().decode([String: String].self, from: Data(pending.carried.utf8))) ?? [:]
        return FederatedSignInResult(session: session, carried: carried)
    }
}
