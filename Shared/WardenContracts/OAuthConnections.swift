import Foundation

/// OAuth connections to downstream SaaS, over NATS: an org's OAuth client for a provider, and per
/// user (or shared) a grant obtained once through the authorization-code flow. The vault keeps the
/// client secret and the refresh token (sealed like every secret) and refreshes access tokens,
/// once across all replicas; the gateway only ever receives the current access token.
public enum OAuthEndpoints {
    public static let setClient = ServiceEndpoint<OAuthClientSettings, OAuthClientView>(.vault, "oauth.clients.set")
    public static let listClients = ServiceEndpoint<OAuthClientListRequest, OAuthClientList>(.vault, "oauth.clients.list")
    public static let deleteClient = ServiceEndpoint<OAuthGrantReference, OAuthClientView>(.vault, "oauth.clients.delete")
    /// Starts an authorization-code flow: the URL to open in a browser.
    public static let connect = ServiceEndpoint<OAuthConnectRequest, OAuthAuthorization>(.vault, "oauth.connect")
    /// The provider's redirect, as the gateway's callback received it (the gateway only).
    public static let complete = ServiceEndpoint<OAuthCallback, OAuthConnectionStatus>(.vault, "oauth.complete")
    public static let status = ServiceEndpoint<OAuthGrantReference, OAuthConnectionStatus>(.vault, "oauth.status")
    public static let disconnect = ServiceEndpoint<OAuthGrantReference, OAuthConnectionStatus>(.vault, "oauth.disconnect")
    /// The current access token, refreshed first when it is about to expire (the gateway only).
    public static let token = ServiceEndpoint<OAuthGrantReference, OAuthAccessToken>(.vault, "oauth.token")
    /// Where the gateway's callback listens, under its public URL.
    public static let callbackPath = "/oauth/connections/callback"
}

/// Where a connection's records live among the org's secrets (so that key rotation, re-encryption
/// and shredding cover them like any secret). Written by the vault's OAuth endpoints only.
public enum OAuthPaths {
    public static func client(_ name: String) -> String { "oauth/\(name)/client" }
    /// The grant of `user`, or the org's shared grant.
    public static func grant(_ name: String, user: String?) -> String { (user.map { "users/\($0)/" } ?? "") + "oauth/\(name)/grant" }
    /// A connection's name: one path segment of letters, digits, '.', '_' or '-' (at most 64).
    public static func isValidName(_ name: some StringProtocol) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name != "." && name != ".."
            && name.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2E || byte == 0x5F
                    || byte == 0x2D
            }
    }

    /// Whether `path` is one of those records (`oauth/…`, `users/<user>/oauth/…`).
    public static func isManaged(_ path: String) -> Bool {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return segments.first == "oauth" || (segments.count > 2 && segments[0] == "users" && segments[2] == "oauth")
    }
}

public struct OAuthClientSettings: Codable, Sendable {
    public var org: String
    public var name: String
    public var clientID: String
    /// Nil for a public client (PKCE only); nil on an update keeps the stored one.
    public var clientSecret: String?
    public var authorizeURL: String
    public var tokenURL: String
    public var scopes: [String]
    public var actor: String

    public init(
        org: String, name: String, clientID: String, clientSecret: String?, authorizeURL: String, tokenURL: String, scopes: [String],
        actor: String
    ) {
        self.org = org
        self.name = name
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.authorizeURL = authorizeURL
        self.tokenURL = tokenURL
        self.scopes = scopes
        self.actor = actor
    }
}

/// An OAuth client as anyone may see it: never its secret.
public struct OAuthClientView: Codable, Sendable, Equatable {
    public var org: String
    public var name: String
    public var clientID: String
    public var hasClientSecret: Bool
    public var authorizeURL: String
    public var tokenURL: String
    public var scopes: [String]
    public var updatedAt: Date
    public var updatedBy: String

    public init(
        org: String, name: String, clientID: String, hasClientSecret: Bool, authorizeURL: String, tokenURL: String, scopes: [String],
        updatedAt: Date, updatedBy: String
    ) {
        self.org = org
        self.name = name
        self.clientID = clientID
        self.hasClientSecret = hasClientSecret
        self.authorizeURL = authorizeURL
        self.tokenURL = tokenURL
        self.scopes = scopes
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
    }
}

public struct OAuthClientListRequest: Codable, Sendable {
    public var org: String
    public init(org: String) { self.org = org }
}

public struct OAuthClientList: Codable, Sendable {
    public var clients: [OAuthClientView]
    public init(clients: [OAuthClientView]) { self.clients = clients }
}

/// A connection of an org, and whose grant: a user's (per-user servers) or the org's (nil).
public struct OAuthGrantReference: Codable, Sendable, Hashable {
    public var org: String
    public var name: String
    public var user: String?
    /// Who asks (the admin principal), for the record; nil for the gateway's token requests.
    public var actor: String?

    public init(org: String, name: String, user: String? = nil, actor: String? = nil) {
        self.org = org
        self.name = name
        self.user = user
        self.actor = actor
    }
}

public struct OAuthConnectRequest: Codable, Sendable {
    public var org: String
    public var name: String
    public var user: String?
    /// The gateway's callback (its public URL + `OAuthEndpoints.callbackPath`).
    public var redirectURI: String
    public var actor: String

    public init(org: String, name: String, user: String?, redirectURI: String, actor: String) {
        self.org = org
        self.name = name
        self.user = user
        self.redirectURI = redirectURI
        self.actor = actor
    }
}

/// Where to send the browser, and until when the flow may be completed.
public struct OAuthAuthorization: Codable, Sendable {
    public var url: String
    public var expiresAt: Date

    public init(url: String, expiresAt: Date) {
        self.url = url
        self.expiresAt = expiresAt
    }
}

/// The query of the provider's redirect to the callback.
public struct OAuthCallback: Codable, Sendable {
    public var state: String
    public var code: String?
    public var error: String?
    public var errorDescription: String?

    public init(state: String, code: String?, error: String?, errorDescription: String?) {
        self.state = state
        self.code = code
        self.error = error
        self.errorDescription = errorDescription
    }
}

public struct OAuthConnectionStatus: Codable, Sendable, Equatable {
    public var org: String
    public var name: String
    public var user: String?
    /// A grant is stored and usable (no failed refresh since it was obtained).
    public var connected: Bool
    /// When the current access token expires (nil: the provider gave no expiry).
    public var expiresAt: Date?
    public var obtainedAt: Date?
    /// Why the grant cannot be used any more (the provider refused its refresh token): connect again.
    public var failure: String?

    public init(org: String, name: String, user: String?, connected: Bool, expiresAt: Date?, obtainedAt: Date?, failure: String?) {
        self.org = org
        self.name = name
        self.user = user
        self.connected = connected
        self.expiresAt = expiresAt
        self.obtainedAt = obtainedAt
        self.failure = failure
    }
}

/// An access token for the gateway to inject, and until when it may use it without asking again.
public struct OAuthAccessToken: Codable, Sendable {
    public var accessToken: String
    public var expiresAt: Date?
    /// After this, ask the vault again: it refreshes the token shortly before it expires.
    public var refreshAt: Date

    public init(accessToken: String, expiresAt: Date?, refreshAt: Date) {
        self.accessToken = accessToken
        self.expiresAt = expiresAt
        self.refreshAt = refreshAt
    }
}
