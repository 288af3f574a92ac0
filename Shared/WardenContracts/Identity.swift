/// The vault's identity endpoints: it holds the token signing keys (private halves encrypted at
/// rest) and signs agent tokens; everyone else sees public keys only.
public enum VaultEndpoints {
    /// The public keys that validate tokens now (current and still-overlapping ones).
    public static let publicKeys = ServiceEndpoint<EmptyBody, PublicSigningKeys>(.vault, "keys.public")
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

    public init(issuer: String, audience: String, agent: String, org: String, user: String, scopes: [String], lifetimeSeconds: Int) {
        self.issuer = issuer
        self.audience = audience
        self.agent = agent
        self.org = org
        self.user = user
        self.scopes = scopes
        self.lifetimeSeconds = lifetimeSeconds
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
