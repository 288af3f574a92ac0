/// The vault's identity endpoints: it holds the token signing keys (private halves encrypted at
/// rest) and signs agent tokens; everyone else sees public keys only.
public enum VaultEndpoints {
    /// The public keys that validate tokens now (current and still-overlapping ones).
    public static let publicKeys = ServiceEndpoint<EmptyBody, PublicSigningKeys>(.vault, "keys.public")
    /// Adds a new signing key; the previous ones keep validating until their tokens have expired.
    public static let rotateKeys = ServiceEndpoint<EmptyBody, PublicSigningKeys>(.vault, "keys.rotate")
    /// Signs an agent token with the current key.
    public static let signToken = ServiceEndpoint<TokenSigningRequest, SignedToken>(.vault, "tokens.sign")
}

/// One Ed25519 public key: its id and its raw bytes, base64url (the JWK `x`).
public struct PublicSigningKey: Codable, Sendable, Equatable {
    public var kid: String
    public var x: String

    public init(kid: String, x: String) {
        self.kid = kid
        self.x = x
    }
}

public struct PublicSigningKeys: Codable, Sendable, Equatable {
    public var keys: [PublicSigningKey]

    public init(keys: [PublicSigningKey]) { self.keys = keys }
}

/// What an agent token says (see `AgentTokenClaims`); the vault adds the key id and signs it.
public struct TokenSigningRequest: Codable, Sendable, Equatable {
    public var issuer: String
    public var audience: String
    public var agent: String
    public var org: String
    public var user: String
    public var scopes: [String]
    public var lifetimeSeconds: Int
    /// Roles from a federated identity (the `roles` claim); nil for others.
    public var roles: [String]?
    /// The client application the token is for (the API key exchanged for it): `client_id`.
    public var client: String?

    public init(
        issuer: String, audience: String, agent: String, org: String, user: String, scopes: [String], lifetimeSeconds: Int, roles: [String]? = nil,
        client: String? = nil
    ) {
        self.client = client
        self.issuer = issuer
        self.audience = audience
        self.agent = agent
        self.org = org
        self.user = user
        self.scopes = scopes
        self.lifetimeSeconds = lifetimeSeconds
        self.roles = roles
    }
}

public struct SignedToken: Codable, Sendable, Equatable {
    public var token: String
    public var tokenID: String
    public var expiresAt: Int64

    public init(token: String, tokenID: String, expiresAt: Int64) {
        self.token = token
        self.tokenID = tokenID
        self.expiresAt = expiresAt
    }
}

/// API keys: long-lived agent credentials, exchanged for short-lived tokens at `/oauth/token`.
/// The vault keeps only a keyed hash of each secret; the key itself is shown once.
public enum APIKeyEndpoints {
    public static let create = ServiceEndpoint<APIKeyCreation, CreatedAPIKey>(.vault, "apikeys.create")
    /// Checks a presented key and signs a token for its agent.
    public static let exchange = ServiceEndpoint<APIKeyExchange, SignedToken>(.vault, "apikeys.exchange")
    public static let revoke = ServiceEndpoint<APIKeyReference, EmptyBody>(.vault, "apikeys.revoke")
    /// Checks a presented key and says whom it stands for (raw keys on `/mcp`, where the org allows).
    public static let check = ServiceEndpoint<APIKeyPresentation, APIKeyHolder>(.vault, "apikeys.check")
}

public struct APIKeyPresentation: Codable, Sendable, Equatable {
    public var key: String
    public init(key: String) { self.key = key }
}

public struct APIKeyHolder: Codable, Sendable, Equatable {
    public var id: String
    public var agent: String
    public var org: String
    public var user: String
    public var scopes: [String]

    public init(id: String, agent: String, org: String, user: String, scopes: [String]) {
        self.id = id
        self.agent = agent
        self.org = org
        self.user = user
        self.scopes = scopes
    }
}

public struct APIKeyCreation: Codable, Sendable, Equatable {
    public var agent: String
    public var org: String
    public var user: String
    public var scopes: [String]
    /// Nil: the key does not expire.
    public var expiresInSeconds: Int?

    public init(agent: String, org: String, user: String, scopes: [String], expiresInSeconds: Int?) {
        self.agent = agent
        self.org = org
        self.user = user
        self.scopes = scopes
        self.expiresInSeconds = expiresInSeconds
    }
}

public struct CreatedAPIKey: Codable, Sendable, Equatable {
    /// The lookup id (also the OAuth client id).
    public var id: String
    /// `wdn_<id>_<secret>`: shown once, never stored.
    public var key: String
    public var expiresAt: Int64?

    public init(id: String, key: String, expiresAt: Int64?) {
        self.id = id
        self.key = key
        self.expiresAt = expiresAt
    }
}

public struct APIKeyExchange: Codable, Sendable, Equatable {
    public var key: String
    public var issuer: String
    public var audience: String
    public var lifetimeSeconds: Int

    public init(key: String, issuer: String, audience: String, lifetimeSeconds: Int) {
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.lifetimeSeconds = lifetimeSeconds
    }
}

public struct APIKeyReference: Codable, Sendable, Equatable {
    public var id: String

    public init(id: String) { self.id = id }
}
