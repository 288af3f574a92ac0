import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenIdentity
import WardenPolicyEngine
import WardenServiceKit

/// The authorization server MCP clients (Claude and ChatGPT connectors, Cursor, the SDKs) sign in
/// through: metadata (RFC 8414, OpenID discovery), `/oauth/authorize` with its sign-in and consent
/// pages, dynamic registration (RFC 7591) and metadata documents, revocation (RFC 7009) and
/// introspection (RFC 7662). Codes and refresh tokens are the vault's (`AuthorizationEndpoints`);
/// the token endpoint's grants are in `OAuthRoutes`.
///
/// Cookies: the session (`__Host-warden_session`, 12 hours) and the sign-in form's CSRF token
/// (`__Host-warden_signin`), both HttpOnly, SameSite=Lax, Secure; on a loopback http gateway (a
/// trial on one machine) without Secure and so without the `__Host-` prefix, which requires it.
package struct AuthorizationServerRoutes: Sendable {
    let authenticator: GatewayAuthenticator
    let client: ServiceClient
    let documents: ClientMetadataDocuments
    let revocations: RevocationList?
    let clientAddress: ClientAddress
    let logger: Logger

    package init(
        authenticator: GatewayAuthenticator, client: ServiceClient, documents: ClientMetadataDocuments, revocations: RevocationList?,
        trustedProxies: [IPAddressRange], logger: Logger
    ) {
        self.authenticator = authenticator
        self.client = client
        self.documents = documents
        self.revocations = revocations
        self.clientAddress = ClientAddress(proxies: trustedProxies)
        self.logger = logger
    }

    var issuer: String { authenticator.publicURL }
    /// Secure cookies, except for a gateway on plain http at a loopback address (a trial on one
    /// machine); on plain http elsewhere the pages do not work, as they should not.
    var secureCookies: Bool {
        guard let components = URLComponents(string: issuer), components.scheme?.lowercased() == "http" else { return true }
        return !RedirectURI.loopbackHosts.contains(components.host?.lowercased() ?? "")
    }
    var sessionCookie: String { secureCookies ? "__Host-warden_session" : "warden_session" }
    var signInCookie: String { secureCookies ? "__Host-warden_signin" : "warden_signin" }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.get("/.well-known/oauth-authorization-server") { _, _ in metadata(openID: false) }
        router.get("/.well-known/openid-configuration") { _, _ in metadata(openID: true) }
        router.get("/oauth/authorize") { request, _ in
            await authorize(AuthorizationRequest(Self.query(request)), request: request)
        }
        router.post("/oauth/sign-in") { request, context in
            guard let fields = await Self.formFields(request) else {
                return AuthorizationPages.error(.badRequest, "Bad request", "The form could not be read.")
            }
            return await signIn(
                fields, request: request, address: clientAddress.of(peer: context.remoteAddress, headers: request.headers) ?? "unknown")
        }
        router.post("/oauth/sign-in/federated") { request, _ in
            guard let fields = await Self.formFields(request) else {
                return AuthorizationPages.error(.badRequest, "Bad request", "The form could not be read.")
            }
            return await startFederated(fields, request: request)
        }
        router.get("/oauth/sign-in/callback/:org") { request, context in
            await finishFederated(
                Self.query(request), org: context.parameters.get("org") ?? "", request: request,
                address: clientAddress.of(peer: context.remoteAddress, headers: request.headers) ?? "unknown")
        }
        router.post("/oauth/consent") { request, _ in
            guard let fields = await Self.formFields(request) else {
                return AuthorizationPages.error(.badRequest, "Bad request", "The form could not be read.")
            }
            return await consent(fields, request: request)
        }
        router.get("/oauth/consents") { request, _ in await consents(request, withdraw: nil) }
        router.post("/oauth/consents") { request, _ in
            guard let fields = await Self.formFields(request) else {
                return AuthorizationPages.error(.badRequest, "Bad request", "The form could not be read.")
            }
            return await consents(request, withdraw: fields)
        }
        router.post("/oauth/sign-out") { request, _ in
            guard let fields = await Self.formFields(request) else {
                return AuthorizationPages.error(.badRequest, "Bad request", "The form could not be read.")
            }
            return await signOut(fields, request: request)
        }
        router.post("/oauth/register") { request, _ in await register(request) }
        router.post("/oauth/revoke") { request, _ in await revoke(request) }
        router.post("/oauth/introspect") { request, _ in await introspect(request) }
    }

    // MARK: Metadata

    func metadata(openID: Bool) -> Response {
        var document: [String: OAuthRoutes.AnyEncodable] = [
            "issuer": .init(issuer),
            "authorization_endpoint": .init(issuer + "/oauth/authorize"),
            "token_endpoint": .init(issuer + "/oauth/token"),
            "registration_endpoint": .init(issuer + "/oauth/register"),
            "revocation_endpoint": .init(issuer + "/oauth/revoke"),
            "introspection_endpoint": .init(issuer + "/oauth/introspect"),
            "jwks_uri": .init(issuer + "/.well-known/jwks.json"),
            "scopes_supported": .init(["mcp", "offline_access"]),
            "response_types_supported": .init(["code"]),
            "response_modes_supported": .init(["query"]),
            "grant_types_supported": .init(["authorization_code", "refresh_token", "client_credentials", OAuthRoutes.tokenExchange]),
            "code_challenge_methods_supported": .init(["S256"]),
            "token_endpoint_auth_methods_supported": .init(["none", "client_secret_basic", "client_secret_post"]),
            "revocation_endpoint_auth_methods_supported": .init(["none"]),
            "introspection_endpoint_auth_methods_supported": .init(["none"]),
            "client_id_metadata_document_supported": .init(true),
            "authorization_response_iss_parameter_supported": .init(true),
        ]
        if openID {
            // OpenID discovery's required fields; Warden issues access tokens, not ID tokens.
            document["subject_types_supported"] = .init(["public"])
            document["id_token_signing_alg_values_supported"] = .init(["EdDSA"])
            document["claims_supported"] = .init(["sub", "org", "usr", "scope", "client_id"])
        }
        return Self.json(.ok, document)
    }

    // MARK: Authorize

    /// The authorization request's client and redirect URI, checked before anything is sent there.
    enum Checked {
        case valid(AuthorizationClient, redirect: String, AuthorizationRequest.Grant)
        case answered(Response)
    }

    func check(_ ask: AuthorizationRequest) async -> Checked {
        guard let clientID = ask.clientID else {
            return .answered(
                AuthorizationPages.error(
                    .badRequest, "Missing client", "The request names no client_id: the app that sent you here is misconfigured."))
        }
        let known: AuthorizationClient
        switch await clientRecord(clientID) {
        case .success(let found): known = found
        case .failure(let problem):
            return .answered(AuthorizationPages.error(problem.unavailable ? .serviceUnavailable : .badRequest, "Unknown client", problem.description))
        }
        let redirect: String
        if let presented = ask.parameters["redirect_uri"] {
            guard RedirectURI.isRegistered(presented, in: known.redirectURIs) else {
                return .answered(
                    AuthorizationPages.error(
                        .badRequest, "Unregistered redirect", "The redirect_uri is not registered for \(known.name); Warden does not send you there.")
                )
            }
            redirect = presented
        } else {
            guard known.redirectURIs.count == 1 else {
                return .answered(
                    AuthorizationPages.error(.badRequest, "Missing redirect", "The request names no redirect_uri, and \(known.name) has several."))
            }
            redirect = known.redirectURIs[0]
        }
        do throws(AuthorizationRequest.Refusal) {
            return .valid(known, redirect: redirect, try ask.grant(audience: authenticator.audience))
        } catch {
            return .answered(refuse(ask, client: known, redirect: redirect, error.error, error.description))
        }
    }

    /// An OAuth error for the client (RFC 6749 §4.1.2.1). Sent to the redirect URI of a client an
    /// org's admins registered; anyone can register a client or publish a metadata document, so for
    /// those a page shows the error and lets the user decide to go back (RFC 9700 §4.11.2: the
    /// gateway must not be an open redirector).
    func refuse(_ ask: AuthorizationRequest, client known: AuthorizationClient, redirect: String, _ error: String, _ description: String) -> Response
    {
        let location = ask.redirect(redirect, issuer: issuer, [("error", error), ("error_description", description)])
        guard known.kind == .registered else {
            let host = URLComponents(string: redirect)?.host ?? redirect
            return AuthorizationPages.page(
                .badRequest, title: "Request refused",
                body: """
                    <h1>Request refused</h1>
                    <p class="error">\(AuthorizationPages.escape(known.name)) sent a request Warden refuses: <code>\(AuthorizationPages.escape(error))</code>, \(AuthorizationPages.escape(description)).</p>
                    <p><a href="\(AuthorizationPages.escape(location))" id="return">Return to \(AuthorizationPages.escape(host))</a></p>
                    """)
        }
        return Self.redirect(location)
    }

    /// A known client, or one whose metadata document (fetched now, or within 10 minutes) describes it.
    func clientRecord(_ id: String) async -> Result<AuthorizationClient, ClientMetadataDocuments.Refusal> {
        let isDocument = documents.isDocumentURL(id)
        do throws(ServiceError) {
            return .success(
                try await client.call(
                    AuthorizationEndpoints.client,
                    AuthorizationClientReference(id: id, maxAge: isDocument ? ClientMetadataDocuments.maximumAge : nil)))
        } catch {
            guard error.code == .notFound else { return .failure(.init("Clients cannot be looked up right now; try again.", unavailable: true)) }
        }
        guard isDocument else { return .failure(.init("No client is registered with the id the app sent.")) }
        do {
            let described = try await documents.fetch(id)
            return .success(try await client.call(AuthorizationEndpoints.registerClient, described))
        } catch let refusal as ClientMetadataDocuments.Refusal {
            logger.info("client metadata document refused", metadata: ["client": "\(id.prefix(256))", "reason": "\(refusal)"])
            return .failure(.init("The client's metadata document cannot be used: \(refusal.description)."))
        } catch {
            return .failure(.init("The client's metadata document cannot be stored right now; try again.", unavailable: true))
        }
    }

    func authorize(_ ask: AuthorizationRequest, request: Request, notice: String? = nil) async -> Response {
        let (known, redirect, grant): (AuthorizationClient, String, AuthorizationRequest.Grant)
        switch await check(ask) {
        case .answered(let response): return response
        case .valid(let client, let uri, let asked): (known, redirect, grant) = (client, uri, asked)
        }
        let prompt = ask.parameters["prompt"]
        guard let token = Self.cookie(sessionCookie, in: request) else {
            // `prompt=none`: the client asks for no page at all (OpenID Connect Core §3.1.2.1).
            if prompt == "none" { return refuse(ask, client: known, redirect: redirect, "login_required", "the user is not signed in") }
            return await signInPage(ask: ask, client: known, error: notice)
        }
        let attempt = AuthorizationAttempt(
            session: token, csrf: nil, client: known, redirectURI: redirect, redirectPresented: ask.parameters["redirect_uri"] != nil,
            scopes: grant.scopes, resource: grant.resource, codeChallenge: grant.codeChallenge)
        do throws(ServiceError) {
            // `prompt=consent` asks again even when a consent is remembered.
            if ask.parameters["prompt"] == "consent" || ask.parameters["prompt"] == "login" {
                if ask.parameters["prompt"] == "login" { return await signInPage(ask: ask, client: known, error: notice) }
                let session = try await client.call(AuthorizationEndpoints.session, SessionReference(token: token))
                return AuthorizationPages.consent(client: known, redirectURI: redirect, scopes: grant.scopes, session: session, carried: ask.carried)
            }
            let outcome = try await client.call(AuthorizationEndpoints.authorize, attempt)
            if outcome.code == nil, prompt == "none" {
                return refuse(ask, client: known, redirect: redirect, "consent_required", "the user has not allowed this client yet")
            }
            guard let code = outcome.code else {
                return AuthorizationPages.consent(
                    client: known, redirectURI: redirect, scopes: grant.scopes, session: outcome.session, carried: ask.carried)
            }
            return Self.redirect(ask.redirect(redirect, issuer: issuer, [("code", code)]))
        } catch {
            return await refusal(error, ask: ask, client: known, redirect: redirect)
        }
    }

    /// A vault refusal on the way to a code, as the user sees it.
    func refusal(_ error: ServiceError, ask: AuthorizationRequest, client known: AuthorizationClient, redirect: String) async -> Response {
        switch error.code {
        case .unauthorized:
            // The session ended: `prompt=none` asks for no page.
            if ask.parameters["prompt"] == "none" {
                return refuse(ask, client: known, redirect: redirect, "login_required", "the user is not signed in")
            }
            return await signInPage(ask: ask, client: known, error: nil, clearSession: true)
        case .forbidden: return AuthorizationPages.error(.forbidden, "Not allowed", error.message)
        default:
            logger.warning("authorization failed", metadata: ["error": "\(error.code.rawValue)"])
            return AuthorizationPages.error(.serviceUnavailable, "Try again", "Warden cannot complete the sign-in right now; try again in a moment.")
        }
    }

    func signInPage(
        ask: AuthorizationRequest?, client known: AuthorizationClient?, error: String?, status: HTTPResponse.Status = .ok, org: String? = nil,
        email: String = "", clearSession: Bool = false
    ) async -> Response {
        var askOrg = false
        var chosen = org ?? known?.org ?? ""
        if known?.org == nil, org == nil {
            let orgs = (try? await client.call(PrincipalEndpoints.listOrgs, EmptyBody()).orgs) ?? []
            if orgs.count == 1 { chosen = orgs[0].id } else { askOrg = true }
        } else if known?.org == nil {
            askOrg = true
        }
        // An org with its own identity provider signs in there.
        var provider: String?
        if !askOrg, !chosen.isEmpty, let view = try? await client.call(AuthorizationEndpoints.provider, OrgReference(org: chosen)) {
            provider = URLComponents(string: view.issuer)?.host ?? view.issuer
        }
        let csrf = Self.randomToken()
        var headers: HTTPFields = [.setCookie: cookie(signInCookie, csrf, maxAge: 3600)]
        if clearSession { headers.append(HTTPField(name: .setCookie, value: cookie(sessionCookie, "", maxAge: 0))) }
        return AuthorizationPages.signIn(
            status, clientName: known?.name, askOrg: askOrg, org: chosen, email: email, error: error, csrf: csrf,
            carried: ask?.carried ?? [("next", "consents")], provider: provider, offerProviders: askOrg, headers: headers)
    }

    // MARK: Sign-in

    func signIn(_ fields: [String: String], request: Request, address: String) async -> Response {
        let ask = AuthorizationRequest(fields)
        let known: AuthorizationClient?
        switch await carriedClient(ask) {
        case .answered(let response): return response
        case .client(let client): known = client
        }
        let org = (fields["org"] ?? "").trimmingCharacters(in: .whitespaces).lowercased(),
            email = (fields["email"] ?? "").trimmingCharacters(in: .whitespaces)
        guard let expected = Self.cookie(signInCookie, in: request), let csrf = fields["csrf"], Self.same(expected, csrf) else {
            return await signInPage(
                ask: ask.clientID == nil ? nil : ask, client: known, error: "The form expired; sign in again.", status: .forbidden)
        }
        guard !org.isEmpty, !email.isEmpty, let password = fields["password"], !password.isEmpty else {
            return await signInPage(
                ask: ask.clientID == nil ? nil : ask, client: known, error: "Enter your organization, email and password.", status: .badRequest,
                org: org.isEmpty ? nil : org, email: email)
        }
        let session: SignInSession
        do throws(ServiceError) {
            session = try await client.call(
                AuthorizationEndpoints.signIn, SignInRequest(org: org, email: email, password: password, address: address))
        } catch {
            let (status, message): (HTTPResponse.Status, String) =
                switch error.code {
                case .unauthorized: (.unauthorized, "The organization, email or password is wrong.")
                case .forbidden: (.forbidden, "Organization \(org) signs in at its identity provider: use the button below.")
                case .tooManyRequests: (.tooManyRequests, error.message.prefix(1).uppercased() + error.message.dropFirst() + ".")
                default: (.serviceUnavailable, "Signing in is not possible right now; try again in a moment.")
                }
            return await signInPage(ask: ask.clientID == nil ? nil : ask, client: known, error: message, status: status, org: org, email: email)
        }
        guard let token = session.token else {
            return AuthorizationPages.error(.serviceUnavailable, "Try again", "The sign-in could not be completed.")
        }
        return signedIn(ask, session: session, token: token)
    }

    /// The client of a sign-in form's carried request (nil when the form carries none: the user
    /// signs in to manage their consents), or the page refusing the request.
    enum CarriedClient {
        case client(AuthorizationClient?)
        case answered(Response)
    }

    func carriedClient(_ ask: AuthorizationRequest) async -> CarriedClient {
        guard ask.clientID != nil else { return .client(nil) }
        switch await check(ask) {
        case .answered(let response): return .answered(response)
        case .valid(let client, _, _): return .client(client)
        }
    }

    /// Signed in: the session's cookie set, on to the authorization (or the consents page).
    func signedIn(_ ask: AuthorizationRequest, session: SignInSession, token: String) -> Response {
        let next =
            ask.clientID == nil
            ? "/oauth/consents"
            : "/oauth/authorize?" + ask.afterSignIn.map { "\(RedirectURI.formEncode($0.0))=\(RedirectURI.formEncode($0.1))" }.joined(separator: "&")
        var response = Self.redirect(next)
        response.headers.append(
            HTTPField(name: .setCookie, value: cookie(sessionCookie, token, maxAge: Int(session.expiresAt - Int64(Date().timeIntervalSince1970)))))
        response.headers.append(HTTPField(name: .setCookie, value: cookie(signInCookie, "", maxAge: 0)))
        return response
    }

    /// Each org's own callback (register it at the org's provider): a provider's answer is only
    /// ever taken for the org whose sign-in it was (no mix-up between orgs' providers).
    func federatedCallback(_ org: String) -> String { issuer + "/oauth/sign-in/callback/" + RedirectURI.formEncode(org) }

    /// Sends the browser to the org's identity provider; the callback comes back to this browser only.
    func startFederated(_ fields: [String: String], request: Request) async -> Response {
        let ask = AuthorizationRequest(fields)
        let known: AuthorizationClient?
        switch await carriedClient(ask) {
        case .answered(let response): return response
        case .client(let client): known = client
        }
        let org = (fields["org"] ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        guard let binding = Self.cookie(signInCookie, in: request), let csrf = fields["csrf"], Self.same(binding, csrf) else {
            return await signInPage(
                ask: ask.clientID == nil ? nil : ask, client: known, error: "The form expired; sign in again.", status: .forbidden)
        }
        do throws(ServiceError) {
            let redirect = try await client.call(
                AuthorizationEndpoints.startFederatedSignIn,
                FederatedSignInStart(
                    org: org, redirectURI: federatedCallback(org), carried: Dictionary(ask.carried, uniquingKeysWith: { $1 }), binding: binding))
            return Self.redirect(redirect.url)
        } catch {
            let message =
                error.code == .notFound
                ? "Organization \(org) has no identity provider: sign in with your email and password."
                : "The identity provider cannot be reached right now; try again in a moment."
            return await signInPage(
                ask: ask.clientID == nil ? nil : ask, client: known, error: message,
                status: error.code == .notFound ? .badRequest : .serviceUnavailable, org: org)
        }
    }

    /// The identity provider's answer: a session, then on to the authorization (or the consents page).
    func finishFederated(_ fields: [String: String], org: String, request: Request, address: String) async -> Response {
        guard let state = fields["state"], !state.isEmpty else {
            return AuthorizationPages.error(.badRequest, "Sign-in failed", "The identity provider's answer has no state.")
        }
        guard let binding = Self.cookie(signInCookie, in: request) else {
            return AuthorizationPages.error(
                .badRequest, "Sign-in failed", "This browser did not start the sign-in (or its cookie expired); sign in again.")
        }
        let result: FederatedSignInResult
        do throws(ServiceError) {
            result = try await client.call(
                AuthorizationEndpoints.finishFederatedSignIn,
                FederatedSignInFinish(
                    org: org, issuer: fields["iss"], state: state, code: fields["code"], error: fields["error"], redirectURI: federatedCallback(org),
                    binding: binding, address: address))
        } catch {
            let message = error.code == .unauthorized ? error.message : "Signing in is not possible right now; try again in a moment."
            return AuthorizationPages.error(error.code == .unauthorized ? .unauthorized : .serviceUnavailable, "Sign-in failed", message)
        }
        guard let token = result.session.token else {
            return AuthorizationPages.error(.serviceUnavailable, "Try again", "The sign-in could not be completed.")
        }
        return signedIn(AuthorizationRequest(result.carried), session: result.session, token: token)
    }

    func signOut(_ fields: [String: String], request: Request) async -> Response {
        guard let token = Self.cookie(sessionCookie, in: request) else {
            return await signInPage(ask: nil, client: nil, error: "You are signed out.")
        }
        if let session = try? await client.call(AuthorizationEndpoints.session, SessionReference(token: token)),
            Self.same(fields["csrf"] ?? "", session.csrf)
        {
            _ = try? await client.call(AuthorizationEndpoints.signOut, SessionReference(token: token))
        } else {
            return AuthorizationPages.error(.forbidden, "Not allowed", "The form's CSRF token is missing or wrong; open the page again.")
        }
        var response = await signInPage(ask: nil, client: nil, error: "You are signed out.")
        response.headers.append(HTTPField(name: .setCookie, value: cookie(sessionCookie, "", maxAge: 0)))
        return response
    }

    // MARK: Consent

    func consent(_ fields: [String: String], request: Request) async -> Response {
        let ask = AuthorizationRequest(fields)
        let (known, redirect, grant): (AuthorizationClient, String, AuthorizationRequest.Grant)
        switch await check(ask) {
        case .answered(let response): return response
        case .valid(let client, let uri, let asked): (known, redirect, grant) = (client, uri, asked)
        }
        guard let token = Self.cookie(sessionCookie, in: request) else { return await signInPage(ask: ask, client: known, error: nil) }
        guard let csrf = fields["csrf"], !csrf.isEmpty else {
            return AuthorizationPages.error(.forbidden, "Not allowed", "The form's CSRF token is missing or wrong; open the page again.")
        }
        do throws(ServiceError) {
            // Denying needs the session and its CSRF token too: a forged form cannot make a client look refused.
            let session = try await client.call(AuthorizationEndpoints.session, SessionReference(token: token))
            guard Self.same(csrf, session.csrf) else {
                return AuthorizationPages.error(.forbidden, "Not allowed", "The form's CSRF token is missing or wrong; open the page again.")
            }
            guard fields["decision"] == "approve" else {
                return Self.redirect(
                    ask.redirect(redirect, issuer: issuer, [("error", "access_denied"), ("error_description", "the user denied the request")]))
            }
            let outcome = try await client.call(
                AuthorizationEndpoints.authorize,
                AuthorizationAttempt(
                    session: token, csrf: csrf, client: known, redirectURI: redirect, redirectPresented: ask.parameters["redirect_uri"] != nil,
                    scopes: grant.scopes, resource: grant.resource, codeChallenge: grant.codeChallenge))
            guard let code = outcome.code else { return AuthorizationPages.error(.serviceUnavailable, "Try again", "No code was issued; try again.") }
            logger.info("consent given", metadata: ["org": "\(session.org)", "user": "\(session.user)", "client": "\(known.id.prefix(256))"])
            return Self.redirect(ask.redirect(redirect, issuer: issuer, [("code", code)]))
        } catch {
            return await refusal(error, ask: ask, client: known, redirect: redirect)
        }
    }

    /// The signed-in user's connected apps; `withdraw` (a posted form) withdraws one first.
    func consents(_ request: Request, withdraw: [String: String]?) async -> Response {
        guard let token = Self.cookie(sessionCookie, in: request) else { return await signInPage(ask: nil, client: nil, error: nil) }
        do throws(ServiceError) {
            let session = try await client.call(AuthorizationEndpoints.session, SessionReference(token: token))
            var notice: String?
            if let withdraw {
                let revoked = try await client.call(
                    AuthorizationEndpoints.withdrawConsent,
                    ConsentReference(owner: ConsentOwner(session: token), clientID: withdraw["client_id"] ?? "", csrf: withdraw["csrf"]))
                await revokeTokens(of: revoked.agent)
                notice = "Withdrawn: the app's tokens are revoked."
            }
            let list = try await client.call(AuthorizationEndpoints.consents, ConsentOwner(session: token))
            return AuthorizationPages.consents(list, session: session, notice: notice)
        } catch {
            switch error.code {
            case .unauthorized: return await signInPage(ask: nil, client: nil, error: nil, clearSession: true)
            case .forbidden: return AuthorizationPages.error(.forbidden, "Not allowed", error.message)
            case .notFound: return AuthorizationPages.error(.notFound, "Not found", error.message)
            default: return AuthorizationPages.error(.serviceUnavailable, "Try again", "Your connected apps cannot be shown right now.")
            }
        }
    }

    /// Every token the agent holds ends now (a withdrawn consent, a revoked or reused grant).
    func revokeTokens(of agent: AgentReference?) async {
        guard let agent, let revocations else { return }
        do {
            try await revocations.revoke(Revocation(kind: .subject, id: agent.agent, at: Int64(Date().timeIntervalSince1970)))
        } catch {
            logger.error("cannot revoke an agent's tokens", metadata: ["agent": "\(agent.agent)", "error": "\(error)"])
        }
    }

    // MARK: Registration (RFC 7591)

    struct RegistrationBody: Decodable {
        var redirectURIs: [String]?
        var clientName: String?
        var grantTypes: [String]?
        var responseTypes: [String]?

        enum CodingKeys: String, CodingKey {
            case redirectURIs = "redirect_uris", clientName = "client_name", grantTypes = "grant_types", responseTypes = "response_types"
        }
    }

    func register(_ request: Request) async -> Response {
        guard let buffer = try? await request.body.collect(upTo: 16 << 10) else {
            return Self.oauthError(.badRequest, "invalid_client_metadata", "the registration is larger than 16 KiB")
        }
        guard let body = try? JSONDecoder().decode(RegistrationBody.self, from: Data(buffer.readableBytesView)) else {
            return Self.oauthError(.badRequest, "invalid_client_metadata", "the body must be a JSON object of client metadata (RFC 7591)")
        }
        guard let uris = body.redirectURIs, !uris.isEmpty, uris.count <= 20 else {
            return Self.oauthError(.badRequest, "invalid_redirect_uri", "redirect_uris lists 1 to 20 URIs")
        }
        for uri in uris {
            if let problem = RedirectURI.problem(uri) { return Self.oauthError(.badRequest, "invalid_redirect_uri", problem) }
        }
        let grants = body.grantTypes ?? ["authorization_code"]
        guard Set(grants).isSubset(of: ["authorization_code", "refresh_token"]) else {
            return Self.oauthError(.badRequest, "invalid_client_metadata", "grant_types may be authorization_code and refresh_token")
        }
        guard Set(body.responseTypes ?? ["code"]).isSubset(of: ["code"]) else {
            return Self.oauthError(.badRequest, "invalid_client_metadata", "response_types may only be code")
        }
        let name = AuthorizationPages.plain(body.clientName ?? "", limit: 100)
        let id = "wdc_" + Self.randomToken().prefix(24)
        let registered: AuthorizationClient
        do throws(ServiceError) {
            registered = try await client.call(
                AuthorizationEndpoints.registerClient,
                AuthorizationClient(id: id, kind: .dynamic, name: name.isEmpty ? "An unnamed app" : name, redirectURIs: uris))
        } catch {
            return Self.oauthError(.serviceUnavailable, "temporarily_unavailable", "clients cannot be registered right now; try again")
        }
        logger.info("client registered", metadata: ["client": "\(id)"])
        // Public clients only (PKCE protects their codes): a secret-based method asked for is replaced, as RFC 7591 §3.2.1 allows.
        return Self.json(
            .created,
            [
                "client_id": OAuthRoutes.AnyEncodable(registered.id), "client_id_issued_at": .init(registered.createdAt ?? 0),
                "client_name": .init(registered.name), "redirect_uris": .init(registered.redirectURIs),
                "grant_types": .init(["authorization_code", "refresh_token"]), "response_types": .init(["code"]),
                "token_endpoint_auth_method": .init("none"),
            ])
    }

    // MARK: Revocation and introspection

    func revoke(_ request: Request) async -> Response {
        guard let fields = await Self.formFields(request), let token = fields["token"], !token.isEmpty else {
            return Self.oauthError(.badRequest, "invalid_request", "token is required (an application/x-www-form-urlencoded body)")
        }
        let clientID = fields["client_id"]
        if token.split(separator: ".").count == 3 {
            if let claims = await authenticator.validateAgent(token), clientID == nil || claims.clientID == clientID, let revocations {
                do {
                    try await revocations.revoke(Revocation(kind: .token, id: claims.jti, at: claims.exp))
                } catch {
                    return Self.oauthError(.serviceUnavailable, "temporarily_unavailable", "the token cannot be revoked right now; try again")
                }
            }
        } else {
            do throws(ServiceError) {
                await revokeTokens(
                    of: try await client.call(AuthorizationEndpoints.revoke, RefreshTokenReference(token: token, clientID: clientID)).agent)
            } catch {
                return Self.oauthError(.serviceUnavailable, "temporarily_unavailable", "the token cannot be revoked right now; try again")
            }
        }
        // RFC 7009 §2.2: unknown and already revoked tokens are answered the same way.
        return Response(status: .ok, headers: [.cacheControl: "no-store"])
    }

    /// RFC 7662. A public client may introspect its own tokens (it names itself with client_id);
    /// anyone else learns only `active: false`.
    func introspect(_ request: Request) async -> Response {
        guard let fields = await Self.formFields(request), let token = fields["token"], !token.isEmpty else {
            return Self.oauthError(.badRequest, "invalid_request", "token is required (an application/x-www-form-urlencoded body)")
        }
        guard let clientID = fields["client_id"], !clientID.isEmpty else {
            return Self.oauthError(.unauthorized, "invalid_client", "name the client the token was issued to (client_id)")
        }
        var answer: [String: OAuthRoutes.AnyEncodable] = ["active": .init(false)]
        if token.split(separator: ".").count == 3 {
            if let claims = await authenticator.validateAgent(token), claims.clientID == clientID {
                answer = [
                    "active": .init(true), "token_type": .init("Bearer"), "scope": .init(claims.scope), "client_id": .init(clientID),
                    "sub": .init(claims.sub), "org": .init(claims.org), "usr": .init(claims.usr), "aud": .init(claims.aud), "iss": .init(claims.iss),
                    "exp": .init(claims.exp), "iat": .init(claims.iat), "jti": .init(claims.jti),
                ]
            }
        } else if let state = try? await client.call(AuthorizationEndpoints.introspect, RefreshTokenReference(token: token, clientID: clientID)),
            state.active
        {
            answer = [
                "active": .init(true), "token_type": .init("refresh_token"), "scope": .init(state.scope ?? ""), "client_id": .init(clientID),
                "sub": .init(state.agent ?? ""), "org": .init(state.org ?? ""), "usr": .init(state.user ?? ""), "aud": .init(state.audience ?? ""),
                "iss": .init(issuer), "exp": .init(state.expiresAt ?? 0), "iat": .init(state.issuedAt ?? 0),
            ]
        }
        return Self.json(.ok, answer)
    }

    // MARK: Helpers

    /// Query parameters as a form encodes them ('+' for a space, as clients' URL encoders write them).
    static func query(_ request: Request) -> [String: String] { OAuthRoutes.form(request.uri.query ?? "") }

    static func formFields(_ request: Request) async -> [String: String]? {
        guard (request.headers[.contentType] ?? "").lowercased().hasPrefix("application/x-www-form-urlencoded"),
            let buffer = try? await request.body.collect(upTo: 32 << 10)
        else { return nil }
        return OAuthRoutes.form(String(buffer: buffer))
    }

    static func cookie(_ name: String, in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name, !parts[1].isEmpty { return String(parts[1]) }
            }
        }
        return nil
    }

    func cookie(_ name: String, _ value: String, maxAge: Int) -> String {
        "\(name)=\(value); Path=/; Max-Age=\(max(0, maxAge)); HttpOnly; SameSite=Lax" + (secureCookies ? "; Secure" : "")
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    static func json(_ status: HTTPResponse.Status, _ document: [String: OAuthRoutes.AnyEncodable]) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: (try? encoder.encode(document)) ?? Data())))
    }

    static func oauthError(_ status: HTTPResponse.Status, _ code: String, _ description: String) -> Response {
        GatewayAuthenticator.problem(status, code, description)
    }

    static func randomToken() -> String { Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255) }) }

    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
