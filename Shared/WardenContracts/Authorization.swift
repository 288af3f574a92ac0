import Foundation

/// The gateway's authorization server for MCP clients (OAuth 2.1 authorization code with PKCE,
/// refresh tokens rotated on every use). The gateway speaks HTTP and renders the pages; what must
/// outlive a request and be shared by replicas (clients, passwords, sign-in sessions, consents,
/// codes, refresh-token families) is the vault's, which alone signs tokens. Gateway callers only.
public enum AuthorizationEndpoints {
    public static let registerClient = ServiceEndpoint<AuthorizationClient, AuthorizationClient>(.vault, "authz.clients.register")
    public static let client = ServiceEndpoint<AuthorizationClientReference, AuthorizationClient>(.vault, "authz.clients.get")
    public static let listClients = ServiceEndpoint<OrgReference, AuthorizationClientList>(.vault, "authz.clients.list")
    public static let removeClient = ServiceEndpoint<AuthorizationClientReference, EmptyBody>(.vault, "authz.clients.remove")
    public static let settings = ServiceEndpoint<OrgReference, SignInSettings>(.vault, "authz.settings.get")
    public static let setSettings = ServiceEndpoint<SignInSettings, SignInSettings>(.vault, "authz.settings.set")
    public static let setPassword = ServiceEndpoint<PasswordSetting, EmptyBody>(.vault, "authz.passwords.set")
    /// Checks a password (rate-limited per account and per address) and opens a sign-in session.
    public static let signIn = ServiceEndpoint<SignInRequest, SignInSession>(.vault, "authz.sign-in")
    public static let session = ServiceEndpoint<SessionReference, SignInSession>(.vault, "authz.sessions.get")
    public static let signOut = ServiceEndpoint<SessionReference, EmptyBody>(.vault, "authz.sessions.end")
    /// A code for a signed-in user's consent (given now with the page's CSRF token, or remembered).
    public static let authorize = ServiceEndpoint<AuthorizationAttempt, AuthorizationOutcome>(.vault, "authz.authorize")
    /// The token endpoint's grants: a code (with its PKCE verifier) or a refresh token.
    public static let token = ServiceEndpoint<TokenGrant, TokenGrantOutcome>(.vault, "authz.token")
    /// RFC 7009 for refresh tokens: the whole family ends.
    public static let revoke = ServiceEndpoint<RefreshTokenReference, RevokedGrant>(.vault, "authz.revoke")
    /// RFC 7662 for refresh tokens.
    public static let introspect = ServiceEndpoint<RefreshTokenReference, RefreshTokenState>(.vault, "authz.introspect")
    public static let consents = ServiceEndpoint<ConsentOwner, ConsentList>(.vault, "authz.consents.list")
    /// Ends a consent: its refresh tokens are revoked and the client's agent disabled.
    public static let withdrawConsent = ServiceEndpoint<ConsentReference, RevokedGrant>(.vault, "authz.consents.withdraw")
    /// An org's own OpenID Connect provider: its users sign in there instead of with a password.
    public static let setProvider = ServiceEndpoint<SignInProviderSettings, SignInProviderView>(.vault, "authz.providers.set")
    public static let provider = ServiceEndpoint<OrgReference, SignInProviderView>(.vault, "authz.providers.get")
    public static let removeProvider = ServiceEndpoint<OrgReference, EmptyBody>(.vault, "authz.providers.remove")
    /// Where to send the user to sign in at the org's provider (authorization code with PKCE and a nonce).
    public static let startFederatedSignIn = ServiceEndpoint<FederatedSignInStart, FederatedSignInRedirect>(.vault, "authz.federation.start")
    /// The provider's answer: its ID token verified and mapped to the org's user, a session opened.
    public static let finishFederatedSignIn = ServiceEndpoint<FederatedSignInFinish, FederatedSignInResult>(.vault, "authz.federation.finish")
}

/// An org's OpenID Connect provider for signing in (Keycloak, Okta, Entra ID, Auth0, Google):
/// Warden is its client. The endpoints are discovered from the issuer when it is set.
public struct SignInProviderSettings: Codable, Sendable, Equatable {
    public var org: String
    public var issuer: String
    public var clientID: String
    /// Nil: a public client (PKCE only); on a change, nil keeps the stored one.
    public var clientSecret: String?
    /// Scopes to ask for (default: openid email profile).
    public var scopes: [String]?
    /// The ID token claim with the user's email (default: email).
    public var emailClaim: String?
    /// The ID token claim with the user's roles or groups (carried into Warden tokens as `roles`).
    public var rolesClaim: String?

    public init(
        org: String, issuer: String, clientID: String, clientSecret: String?, scopes: [String]? = nil, emailClaim: String? = nil,
        rolesClaim: String? = nil
    ) {
        self.rolesClaim = rolesClaim
        self.org = org
        self.issuer = issuer
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scopes = scopes
        self.emailClaim = emailClaim
    }
}

/// An org's provider as admins see it (never its secret).
public struct SignInProviderView: Codable, Sendable, Equatable {
    public var org: String
    public var issuer: String
    public var clientID: String
    public var hasClientSecret: Bool
    public var authorizeURL: String
    public var scopes: [String]
    public var emailClaim: String
    public var rolesClaim: String?

    public init(
        org: String, issuer: String, clientID: String, hasClientSecret: Bool, authorizeURL: String, scopes: [String], emailClaim: String,
        rolesClaim: String? = nil
    ) {
        self.rolesClaim = rolesClaim
        self.org = org
        self.issuer = issuer
        self.clientID = clientID
        self.hasClientSecret = hasClientSecret
        self.authorizeURL = authorizeURL
        self.scopes = scopes
        self.emailClaim = emailClaim
    }
}

public struct FederatedSignInStart: Codable, Sendable, Equatable {
    public var org: String
    /// The gateway's callback.
    public var redirectURI: String
    /// What the sign-in continues with (the authorization request's parameters).
    public var carried: [String: String]
    /// The browser's sign-in form token: the callback must come back to the same browser.
    public var binding: String

    public init(org: String, redirectURI: String, carried: [String: String], binding: String) {
        self.org = org
        self.redirectURI = redirectURI
        self.carried = carried
        self.binding = binding
    }
}

public struct FederatedSignInRedirect: Codable, Sendable, Equatable {
    public var url: String
    public init(url: String) { self.url = url }
}

public struct FederatedSignInFinish: Codable, Sendable, Equatable {
    /// The org whose callback the provider answered at.
    public var org: String
    /// The answer's `iss` (RFC 9207), when the provider sends one.
    public var issuer: String?
    public var state: String
    public var code: String?
    /// The provider's error, when it sent one back instead of a code.
    public var error: String?
    public var redirectURI: String
    public var binding: String
    public var address: String

    public init(
        org: String, issuer: String?, state: String, code: String?, error: String?, redirectURI: String, binding: String, address: String
    ) {
        self.org = org
        self.issuer = issuer
        self.state = state
        self.code = code
        self.error = error
        self.redirectURI = redirectURI
        self.binding = binding
        self.address = address
    }
}

public struct FederatedSignInResult: Codable, Sendable, Equatable {
    public var session: SignInSession
    public var carried: [String: String]

    public init(session: SignInSession, carried: [String: String]) {
        self.session = session
        self.carried = carried
    }
}

/// An MCP client known to the authorization server.
public struct AuthorizationClient: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// Added by an org's admin (`warden oauth client add`): only that org's users sign in with it.
        case registered
        /// RFC 7591 dynamic registration.
        case dynamic
        /// A Client ID Metadata Document: the id is the HTTPS URL the gateway fetched it from.
        case metadataDocument = "metadata-document"
    }

    public var id: String
    public var kind: Kind
    public var name: String
    public var redirectURIs: [String]
    /// The org a registered client belongs to; nil for others.
    public var org: String?
    public var createdAt: Int64?

    public init(id: String, kind: Kind, name: String, redirectURIs: [String], org: String? = nil, createdAt: Int64? = nil) {
        self.id = id
        self.kind = kind
        self.name = name
        self.redirectURIs = redirectURIs
        self.org = org
        self.createdAt = createdAt
    }
}

public struct AuthorizationClientReference: Codable, Sendable, Equatable {
    public var id: String
    /// For removal: the org whose registered client it must be (nil: a platform admin, any client).
    public var org: String?
    /// A metadata document's record fetched longer ago than this many seconds counts as absent.
    public var maxAge: Int64?

    public init(id: String, org: String? = nil, maxAge: Int64? = nil) {
        self.id = id
        self.org = org
        self.maxAge = maxAge
    }
}

public struct AuthorizationClientList: Codable, Sendable, Equatable {
    public var clients: [AuthorizationClient]
    public init(clients: [AuthorizationClient]) { self.clients = clients }
}

/// An org's sign-in choices.
public struct SignInSettings: Codable, Sendable, Equatable {
    public var org: String
    /// Whether clients registered dynamically (RFC 7591) or by metadata document may be used by its users (on by default).
    public var dynamicClients: Bool

    public init(org: String, dynamicClients: Bool) {
        self.org = org
        self.dynamicClients = dynamicClients
    }
}

public struct PasswordSetting: Codable, Sendable, Equatable {
    public var org: String
    public var user: String
    /// Nil removes the password (the user can no longer sign in with one).
    public var password: String?

    public init(org: String, user: String, password: String?) {
        self.org = org
        self.user = user
        self.password = password
    }
}

public struct SignInRequest: Codable, Sendable, Equatable {
    public var org: String
    public var email: String
    public var password: String
    /// The client's address (failed attempts are counted per address too).
    public var address: String

    public init(org: String, email: String, password: String, address: String) {
        self.org = org
        self.email = email
        self.password = password
        self.address = address
    }
}

/// A signed-in user's session. `token` (for the cookie) only in the sign-in's answer.
public struct SignInSession: Codable, Sendable, Equatable {
    public var token: String?
    public var org: String
    public var user: String
    public var email: String
    /// The CSRF token the session's forms carry.
    public var csrf: String
    public var expiresAt: Int64
    /// Roles the org's identity provider gave (carried into the tokens as `roles`); nil for passwords.
    public var roles: [String]?

    public init(token: String?, org: String, user: String, email: String, csrf: String, expiresAt: Int64, roles: [String]? = nil) {
        self.token = token
        self.org = org
        self.user = user
        self.email = email
        self.csrf = csrf
        self.expiresAt = expiresAt
        self.roles = roles
    }
}

public struct SessionReference: Codable, Sendable, Equatable {
    public var token: String
    public init(token: String) { self.token = token }
}

/// An authorization request the gateway validated, for a signed-in session.
public struct AuthorizationAttempt: Codable, Sendable, Equatable {
    public var session: String
    /// The consent page's CSRF token when the user approves now; nil asks for a remembered consent.
    public var csrf: String?
    public var client: AuthorizationClient
    public var redirectURI: String
    /// Whether the request named its redirect URI (then the token request must repeat it).
    public var redirectPresented: Bool
    public var scopes: [String]
    /// The RFC 8707 resource: the token's audience.
    public var resource: String
    public var codeChallenge: String

    public init(
        session: String, csrf: String?, client: AuthorizationClient, redirectURI: String, redirectPresented: Bool = true, scopes: [String],
        resource: String, codeChallenge: String
    ) {
        self.session = session
        self.csrf = csrf
        self.client = client
        self.redirectURI = redirectURI
        self.redirectPresented = redirectPresented
        self.scopes = scopes
        self.resource = resource
        self.codeChallenge = codeChallenge
    }
}

public struct AuthorizationOutcome: Codable, Sendable, Equatable {
    /// Nil when no consent is remembered (the page asks).
    public var code: String?
    public var session: SignInSession

    public init(code: String?, session: SignInSession) {
        self.code = code
        self.session = session
    }
}

public struct TokenGrant: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case authorizationCode = "authorization_code"
        case refreshToken = "refresh_token"
    }

    public var kind: Kind
    public var clientID: String
    public var code: String?
    public var codeVerifier: String?
    public var redirectURI: String?
    public var refreshToken: String?
    /// The RFC 8707 resource asked for (nil: the one the grant was made for).
    public var resource: String?
    /// The access token's issuer.
    public var issuer: String

    public init(
        kind: Kind, clientID: String, code: String? = nil, codeVerifier: String? = nil, redirectURI: String? = nil, refreshToken: String? = nil,
        resource: String? = nil, issuer: String
    ) {
        self.kind = kind
        self.clientID = clientID
        self.code = code
        self.codeVerifier = codeVerifier
        self.redirectURI = redirectURI
        self.refreshToken = refreshToken
        self.resource = resource
        self.issuer = issuer
    }
}

/// Tokens, or the OAuth error to answer with. A reused code or refresh token also names the agent
/// whose tokens the gateway revokes (the family was revoked in the vault).
public struct TokenGrantOutcome: Codable, Sendable, Equatable {
    public var accessToken: String?
    public var refreshToken: String?
    public var expiresIn: Int?
    public var scope: String?
    /// An RFC 6749 error code (`invalid_grant`, `invalid_target`, …) when refused.
    public var error: String?
    public var errorDescription: String?
    public var revoked: AgentReference?

    public init(
        accessToken: String? = nil, refreshToken: String? = nil, expiresIn: Int? = nil, scope: String? = nil, error: String? = nil,
        errorDescription: String? = nil, revoked: AgentReference? = nil
    ) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.expiresIn = expiresIn
        self.scope = scope
        self.error = error
        self.errorDescription = errorDescription
        self.revoked = revoked
    }
}

public struct RefreshTokenReference: Codable, Sendable, Equatable {
    public var token: String
    /// The client presenting it: a token of another client is left alone.
    public var clientID: String?

    public init(token: String, clientID: String?) {
        self.token = token
        self.clientID = clientID
    }
}

/// The agent whose tokens the gateway revokes (nil: nothing was revoked).
public struct RevokedGrant: Codable, Sendable, Equatable {
    public var agent: AgentReference?
    public init(agent: AgentReference?) { self.agent = agent }
}

public struct RefreshTokenState: Codable, Sendable, Equatable {
    public var active: Bool
    public var clientID: String?
    public var org: String?
    public var user: String?
    public var agent: String?
    public var scope: String?
    public var audience: String?
    public var issuedAt: Int64?
    public var expiresAt: Int64?

    public init(
        active: Bool, clientID: String? = nil, org: String? = nil, user: String? = nil, agent: String? = nil, scope: String? = nil,
        audience: String? = nil, issuedAt: Int64? = nil, expiresAt: Int64? = nil
    ) {
        self.active = active
        self.clientID = clientID
        self.org = org
        self.user = user
        self.agent = agent
        self.scope = scope
        self.audience = audience
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }
}

/// A user's consents: by session (the user's own page) or by org and user (admins).
public struct ConsentOwner: Codable, Sendable, Equatable {
    public var org: String?
    public var user: String?
    public var session: String?

    public init(org: String? = nil, user: String? = nil, session: String? = nil) {
        self.org = org
        self.user = user
        self.session = session
    }
}

public struct Consent: Codable, Sendable, Equatable {
    public var clientID: String
    public var clientName: String
    public var scopes: [String]
    public var agent: String
    public var grantedAt: Int64

    public init(clientID: String, clientName: String, scopes: [String], agent: String, grantedAt: Int64) {
        self.clientID = clientID
        self.clientName = clientName
        self.scopes = scopes
        self.agent = agent
        self.grantedAt = grantedAt
    }
}

public struct ConsentList: Codable, Sendable, Equatable {
    public var org: String
    public var user: String
    public var consents: [Consent]

    public init(org: String, user: String, consents: [Consent]) {
        self.org = org
        self.user = user
        self.consents = consents
    }
}

/// A consent to withdraw: the owner as in `ConsentOwner` (with the page's CSRF token for a session).
public struct ConsentReference: Codable, Sendable, Equatable {
    public var owner: ConsentOwner
    public var clientID: String
    public var csrf: String?

    public init(owner: ConsentOwner, clientID: String, csrf: String? = nil) {
        self.owner = owner
        self.clientID = clientID
        self.csrf = csrf
    }
}
