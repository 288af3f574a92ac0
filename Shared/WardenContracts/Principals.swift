/// Orgs (tenants), their users and agents: kept by the policy service (schema `policy`).
public enum PrincipalEndpoints {
    public static let createOrg = ServiceEndpoint<OrgCreation, Org>(.policy, "orgs.create")
    public static let listOrgs = ServiceEndpoint<EmptyBody, OrgList>(.policy, "orgs.list")
    /// Changes an org's settings (the fields given).
    public static let updateOrg = ServiceEndpoint<OrgCreation, Org>(.policy, "orgs.update")
    public static let createUser = ServiceEndpoint<UserCreation, User>(.policy, "users.create")
    public static let listUsers = ServiceEndpoint<OrgReference, UserList>(.policy, "users.list")
    public static let setUserDisabled = ServiceEndpoint<DisableRequest, User>(.policy, "users.set-disabled")
    /// Replaces a user's attributes (the claims policies read); announced as a policy change.
    public static let setUserAttributes = ServiceEndpoint<UserAttributes, User>(.policy, "users.set-attributes")
    public static let createAgent = ServiceEndpoint<AgentCreation, Agent>(.policy, "agents.create")
    public static let listAgents = ServiceEndpoint<OrgReference, AgentList>(.policy, "agents.list")
    public static let setAgentDisabled = ServiceEndpoint<DisableRequest, Agent>(.policy, "agents.set-disabled")
    public static let createServiceAccount = ServiceEndpoint<ServiceAccountCreation, ServiceAccount>(.policy, "service-accounts.create")
    public static let listServiceAccounts = ServiceEndpoint<OrgReference, ServiceAccountList>(.policy, "service-accounts.list")
    public static let setServiceAccountDisabled = ServiceEndpoint<DisableRequest, ServiceAccount>(.policy, "service-accounts.set-disabled")
    /// Who an agent acts for, and whether it may get a token now (it and its owner enabled). A
    /// service account (`svc_…`) resolves as an agent acting for itself.
    public static let resolveAgent = ServiceEndpoint<AgentReference, ResolvedAgent>(.policy, "agents.resolve")
    /// The org's user with this email (sign-in with a password).
    public static let findUser = ServiceEndpoint<UserLookup, User>(.policy, "users.find")
    /// The agent an OAuth client acts as for its user: created on first consent, found on a later
    /// one (its name is derived from the client and the user, so one agent per pair).
    public static let agentForClient = ServiceEndpoint<AgentCreation, Agent>(.policy, "agents.for-client")
}

public struct UserLookup: Codable, Sendable, Equatable {
    public var org: String
    public var email: String

    public init(org: String, email: String) {
        self.org = org
        self.email = email
    }
}

public struct Org: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    /// The longest agent token this org allows, in seconds.
    public var maxTokenLifetime: Int
    /// Whether its agents may present a raw API key on `/mcp` instead of a token (off by default).
    public var rawAPIKeysOnMCP: Bool

    public init(id: String, name: String, maxTokenLifetime: Int, rawAPIKeysOnMCP: Bool = false) {
        self.id = id
        self.name = name
        self.maxTokenLifetime = maxTokenLifetime
        self.rawAPIKeysOnMCP = rawAPIKeysOnMCP
    }
}

public struct OrgCreation: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var maxTokenLifetime: Int?
    public var rawAPIKeysOnMCP: Bool?

    public init(id: String, name: String, maxTokenLifetime: Int? = nil, rawAPIKeysOnMCP: Bool? = nil) {
        self.id = id
        self.name = name
        self.maxTokenLifetime = maxTokenLifetime
        self.rawAPIKeysOnMCP = rawAPIKeysOnMCP
    }
}

public struct OrgList: Codable, Sendable, Equatable {
    public var orgs: [Org]
    public init(orgs: [Org]) { self.orgs = orgs }
}

public struct OrgReference: Codable, Sendable, Equatable {
    public var org: String
    public init(org: String) { self.org = org }
}

public struct User: Codable, Sendable, Equatable {
    public var id: String
    public var org: String
    public var email: String
    /// owner, admin, approver or member.
    public var role: String
    public var disabled: Bool
    /// What policies read as the user's claims (`customer_id`), set by the org's admins.
    public var attributes: [String: String]?

    public init(id: String, org: String, email: String, role: String, disabled: Bool, attributes: [String: String]? = nil) {
        self.id = id
        self.org = org
        self.email = email
        self.role = role
        self.disabled = disabled
        self.attributes = attributes
    }

    public static let roles = ["owner", "admin", "approver", "member"]
}

public struct UserCreation: Codable, Sendable, Equatable {
    public var org: String
    public var email: String
    public var role: String

    public init(org: String, email: String, role: String) {
        self.org = org
        self.email = email
        self.role = role
    }
}

public struct UserList: Codable, Sendable, Equatable {
    public var users: [User]
    public init(users: [User]) { self.users = users }
}

public struct Agent: Codable, Sendable, Equatable {
    public var id: String
    public var org: String
    public var name: String
    /// The agent class or role (for policies on a kind of agent).
    public var agentClass: String
    /// The user the agent acts for.
    public var owner: String
    public var disabled: Bool

    public init(id: String, org: String, name: String, agentClass: String, owner: String, disabled: Bool) {
        self.id = id
        self.org = org
        self.name = name
        self.agentClass = agentClass
        self.owner = owner
        self.disabled = disabled
    }
}

public struct AgentCreation: Codable, Sendable, Equatable {
    public var org: String
    public var name: String
    public var agentClass: String
    public var owner: String

    public init(org: String, name: String, agentClass: String, owner: String) {
        self.org = org
        self.name = name
        self.agentClass = agentClass
        self.owner = owner
    }
}

public struct AgentList: Codable, Sendable, Equatable {
    public var agents: [Agent]
    public init(agents: [Agent]) { self.agents = agents }
}

public struct AgentReference: Codable, Sendable, Equatable {
    public var org: String
    public var agent: String

    public init(org: String, agent: String) {
        self.org = org
        self.agent = agent
    }
}

public struct DisableRequest: Codable, Sendable, Equatable {
    public var org: String
    public var id: String
    public var disabled: Bool

    public init(org: String, id: String, disabled: Bool) {
        self.org = org
        self.id = id
        self.disabled = disabled
    }
}

public struct ResolvedAgent: Codable, Sendable, Equatable {
    public var agent: Agent
    public var owner: User
    public var org: Org

    public init(agent: Agent, owner: User, org: Org) {
        self.agent = agent
        self.owner = owner
        self.org = org
    }
}

/// Federation: an org trusts JWTs from an external OpenID Connect provider and maps their claims to
/// its users and agents (RFC 8693 token exchange at `/oauth/token`).
public enum FederationEndpoints {
    public static let trust = ServiceEndpoint<TrustedIssuer, TrustedIssuer>(.policy, "federation.trust")
    public static let list = ServiceEndpoint<OrgReference, TrustedIssuerList>(.policy, "federation.list")
    /// The trusts naming an issuer, across orgs (the exchange learns the org from the trust).
    public static let forIssuer = ServiceEndpoint<IssuerReference, TrustedIssuerList>(.policy, "federation.for-issuer")
    /// The agent a federated identity maps to: the org's user with that email, its agent with that name.
    public static let resolve = ServiceEndpoint<FederatedIdentity, ResolvedAgent>(.policy, "federation.resolve")
}

public struct FederatedIdentity: Codable, Sendable, Equatable {
    public var org: String
    public var email: String
    public var agentName: String

    public init(org: String, email: String, agentName: String) {
        self.org = org
        self.email = email
        self.agentName = agentName
    }
}

public struct TrustedIssuer: Codable, Sendable, Equatable {
    public var org: String
    /// The provider's `iss`, exactly.
    public var issuer: String
    /// The provider's public keys, as a JWKS document (RSA, EC or OKP keys); empty when `jwksURL`
    /// names where gateways fetch them.
    public var jwks: String
    /// Where the provider publishes its JWKS (https; fetched and cached by gateways, re-fetched when
    /// a token's key is not in it, so that the provider's key rotations are followed).
    public var jwksURL: String?
    /// The `aud` the provider's tokens must carry for Warden.
    public var audience: String
    /// The claim holding the user's email (a user of the org).
    public var userClaim: String
    /// The claim holding the agent's name (an agent of the org owned by that user).
    public var agentClaim: String
    /// The claim holding the caller's roles or groups (an array, or a space- or comma-separated
    /// string); they are carried into the Warden token as `roles` for policy to use.
    public var rolesClaim: String?

    public init(
        org: String, issuer: String, jwks: String, jwksURL: String? = nil, audience: String, userClaim: String = "email", agentClaim: String = "azp",
        rolesClaim: String? = nil
    ) {
        self.org = org
        self.issuer = issuer
        self.jwks = jwks
        self.jwksURL = jwksURL
        self.audience = audience
        self.userClaim = userClaim
        self.agentClaim = agentClaim
        self.rolesClaim = rolesClaim
    }
}

public struct TrustedIssuerList: Codable, Sendable, Equatable {
    public var issuers: [TrustedIssuer]
    public init(issuers: [TrustedIssuer]) { self.issuers = issuers }
}

public struct IssuerReference: Codable, Sendable, Equatable {
    public var issuer: String
    public init(issuer: String) { self.issuer = issuer }
}

/// A principal for automation: it holds tokens and API keys like an agent, but acts for no person.
public struct ServiceAccount: Codable, Sendable, Equatable {
    public var id: String
    public var org: String
    public var name: String
    public var disabled: Bool

    public init(id: String, org: String, name: String, disabled: Bool) {
        self.id = id
        self.org = org
        self.name = name
        self.disabled = disabled
    }
}

public struct ServiceAccountCreation: Codable, Sendable, Equatable {
    public var org: String
    public var name: String

    public init(org: String, name: String) {
        self.org = org
        self.name = name
    }
}

public struct ServiceAccountList: Codable, Sendable, Equatable {
    public var serviceAccounts: [ServiceAccount]
    public init(serviceAccounts: [ServiceAccount]) { self.serviceAccounts = serviceAccounts }
}

/// A user's attributes, replaced as a whole: at most 64, keys of letters, digits, `_`, `.`, `-`.
public struct UserAttributes: Codable, Sendable, Equatable {
    public var org: String
    public var id: String
    public var attributes: [String: String]

    public init(org: String, id: String, attributes: [String: String]) {
        self.org = org
        self.id = id
        self.attributes = attributes
    }
}
