import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// The policy service's schema: orgs, their users and agents. Every query names the org, so one
/// org's principals are never read through another's.
package enum PolicyMigrations {
    package static let principals = Migration(
        version: 2,
        name: "principals",
        statements: [
            """
            CREATE TABLE orgs (
                id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
                name text NOT NULL,
                max_token_lifetime integer NOT NULL DEFAULT 3600 CHECK (max_token_lifetime BETWEEN 60 AND 86400),
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE users (
                id text PRIMARY KEY,
                org text NOT NULL REFERENCES orgs(id),
                email text NOT NULL,
                role text NOT NULL CHECK (role IN ('owner', 'admin', 'approver', 'member')),
                disabled boolean NOT NULL DEFAULT false,
                created_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (org, email)
            )
            """,
            """
            CREATE TABLE agents (
                id text PRIMARY KEY,
                org text NOT NULL REFERENCES orgs(id),
                name text NOT NULL,
                agent_class text NOT NULL,
                owner text NOT NULL REFERENCES users(id),
                disabled boolean NOT NULL DEFAULT false,
                created_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (org, name)
            )
            """,
        ]
    )
}

extension PolicyMigrations {
    package static let federation = Migration(
        version: 3,
        name: "trusted_issuers",
        statements: [
            """
            CREATE TABLE trusted_issuers (
                org text NOT NULL REFERENCES orgs(id),
                issuer text NOT NULL,
                jwks text NOT NULL,
                audience text NOT NULL,
                user_claim text NOT NULL,
                agent_claim text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (org, issuer)
            )
            """
        ]
    )
}

extension PolicyMigrations {
    package static let serviceAccounts = Migration(
        version: 5,
        name: "service_accounts",
        statements: [
            """
            CREATE TABLE service_accounts (
                id text PRIMARY KEY,
                org text NOT NULL REFERENCES orgs(id),
                name text NOT NULL,
                disabled boolean NOT NULL DEFAULT false,
                created_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (org, name)
            )
            """
        ]
    )

    package static let federationURLs = Migration(
        version: 6,
        name: "trusted_issuers_jwks_url_roles",
        statements: ["ALTER TABLE trusted_issuers ADD COLUMN jwks_url text, ADD COLUMN roles_claim text"]
    )

    /// Users' attributes: what policies read as the acting user's claims (`customer_id`).
    package static let userAttributes = Migration(
        version: 8,
        name: "user_attributes",
        statements: ["ALTER TABLE users ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}'"]
    )

    package static let rawAPIKeys = Migration(
        version: 4,
        name: "orgs_raw_api_keys",
        statements: ["ALTER TABLE orgs ADD COLUMN raw_api_keys_on_mcp boolean NOT NULL DEFAULT false"]
    )
}

package struct PrincipalStore: Sendable {
    let database: DatabasePool
    let logger: Logger

    package init(database: DatabasePool, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    static func newID(_ prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        return prefix + "_" + String(format: "%012llx", (generator.next() as UInt64) & 0xFFFF_FFFF_FFFF)
    }

    /// PostgreSQL's answer to a constraint violation, as a clear service error.
    func mapped(_ error: any Error, _ what: String) -> any Error {
        if let psql = error as? PSQLError, let code = psql.serverInfo?[.sqlState] {
            switch code {
            case "23505": return ServiceError(.conflict, "\(what) exists already")
            case "23503": return ServiceError(.notFound, "\(what): the org or owner does not exist")
            case "23514": return ServiceError(.badRequest, "\(what): a value is out of range (ids: a-z, 0-9 and '-', 1-32 characters)")
            default: break
            }
        }
        return error
    }

    package func createOrg(_ request: OrgCreation) async throws -> Org {
        let org = Org(
            id: request.id, name: request.name.isEmpty ? request.id : request.name, maxTokenLifetime: request.maxTokenLifetime ?? 3600,
            rawAPIKeysOnMCP: request.rawAPIKeysOnMCP ?? false
        )
        do {
            try await database.query(
                "INSERT INTO orgs (id, name, max_token_lifetime, raw_api_keys_on_mcp) VALUES (\(org.id), \(org.name), \(org.maxTokenLifetime), \(org.rawAPIKeysOnMCP))",
                logger: logger
            )
        } catch {
            throw mapped(error, "org '\(org.id.prefix(32))'")
        }
        return org
    }

    package func updateOrg(_ request: OrgCreation) async throws -> Org {
        _ = try await org(request.id)
        do {
            if let lifetime = request.maxTokenLifetime {
                try await database.query("UPDATE orgs SET max_token_lifetime = \(lifetime) WHERE id = \(request.id)", logger: logger)
            }
            if let raw = request.rawAPIKeysOnMCP {
                try await database.query("UPDATE orgs SET raw_api_keys_on_mcp = \(raw) WHERE id = \(request.id)", logger: logger)
            }
            if !request.name.isEmpty { try await database.query("UPDATE orgs SET name = \(request.name) WHERE id = \(request.id)", logger: logger) }
        } catch {
            throw mapped(error, "org '\(request.id.prefix(32))'")
        }
        return try await org(request.id)
    }

    package func orgs() async throws -> [Org] {
        var orgs: [Org] = []
        let rows = try await database.query("SELECT id, name, max_token_lifetime, raw_api_keys_on_mcp FROM orgs ORDER BY id", logger: logger)
        for try await (id, name, lifetime, raw) in rows.decode((String, String, Int, Bool).self) {
            orgs.append(Org(id: id, name: name, maxTokenLifetime: lifetime, rawAPIKeysOnMCP: raw))
        }
        return orgs
    }

    func org(_ id: String) async throws -> Org {
        let rows = try await database.query("SELECT name, max_token_lifetime, raw_api_keys_on_mcp FROM orgs WHERE id = \(id)", logger: logger)
        for try await (name, lifetime, raw) in rows.decode((String, Int, Bool).self) {
            return Org(id: id, name: name, maxTokenLifetime: lifetime, rawAPIKeysOnMCP: raw)
        }
        throw ServiceError(.notFound, "no org '\(id.prefix(32))'")
    }

    package func createUser(_ request: UserCreation) async throws -> User {
        guard User.roles.contains(request.role) else { throw ServiceError(.badRequest, "role must be one of \(User.roles.joined(separator: ", "))") }
        guard request.email.contains("@"), request.email.count <= 254 else { throw ServiceError(.badRequest, "email is not valid") }
        let user = User(id: Self.newID("usr"), org: request.org, email: request.email.lowercased(), role: request.role, disabled: false)
        do {
            try await database.query(
                "INSERT INTO users (id, org, email, role) VALUES (\(user.id), \(user.org), \(user.email), \(user.role))", logger: logger)
        } catch {
            throw mapped(error, "user '\(user.email)' in org '\(user.org.prefix(32))'")
        }
        return user
    }

    package func users(org: String) async throws -> [User] {
        _ = try await self.org(org)
        var users: [User] = []
        let rows = try await database.query(
            "SELECT id, email, role, disabled, attributes::text FROM users WHERE org = \(org) ORDER BY email", logger: logger)
        for try await (id, email, role, disabled, attributes) in rows.decode((String, String, String, Bool, String).self) {
            users.append(User(id: id, org: org, email: email, role: role, disabled: disabled, attributes: Self.attributes(attributes)))
        }
        return users
    }

    func user(org: String, id: String) async throws -> User {
        let rows = try await database.query(
            "SELECT email, role, disabled, attributes::text FROM users WHERE org = \(org) AND id = \(id)", logger: logger)
        for try await (email, role, disabled, attributes) in rows.decode((String, String, Bool, String).self) {
            return User(id: id, org: org, email: email, role: role, disabled: disabled, attributes: Self.attributes(attributes))
        }
        throw ServiceError(.notFound, "no user '\(id.prefix(32))' in org '\(org.prefix(32))'")
    }

    package func user(org: String, email: String) async throws -> User {
        let rows = try await database.query(
            "SELECT id, role, disabled, attributes::text FROM users WHERE org = \(org) AND email = \(email.lowercased())", logger: logger)
        for try await (id, role, disabled, attributes) in rows.decode((String, String, Bool, String).self) {
            return User(id: id, org: org, email: email.lowercased(), role: role, disabled: disabled, attributes: Self.attributes(attributes))
        }
        throw ServiceError(.notFound, "no user with that email in org '\(org.prefix(32))'")
    }

    /// The agent named `request.name` acting for `request.owner`: created, or the one there is (as it
    /// is, disabled or not). A name another user's agent holds is refused rather than taken over.
    package func agentForClient(_ request: AgentCreation) async throws -> Agent {
        guard !request.name.isEmpty, request.name.count <= 64 else { throw ServiceError(.badRequest, "an agent needs a name of 1-64 characters") }
        let owner = try await user(org: request.org, id: request.owner)
        let id = Self.newID("agt")
        let rows = try await database.query(
            """
            INSERT INTO agents (id, org, name, agent_class, owner) VALUES (\(id), \(request.org), \(request.name), \(request.agentClass), \(owner.id))
            ON CONFLICT (org, name) DO UPDATE SET name = excluded.name WHERE agents.owner = excluded.owner
            RETURNING id, agent_class, disabled
            """, logger: logger)
        for try await (agentID, agentClass, disabled) in rows.decode((String, String, Bool).self) {
            return Agent(id: agentID, org: request.org, name: request.name, agentClass: agentClass, owner: owner.id, disabled: disabled)
        }
        throw ServiceError(.conflict, "agent '\(request.name.prefix(64))' in org '\(request.org.prefix(32))' acts for another user")
    }

    /// A user's attributes as stored (a JSON object of strings); nil when there are none.
    package static func attributes(_ text: String) -> [String: String]? {
        guard let decoded = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)), !decoded.isEmpty else { return nil }
        return decoded
    }

    package func setUserAttributes(_ request: UserAttributes) async throws -> User {
        guard request.attributes.count <= 64 else { throw ServiceError(.badRequest, "at most 64 attributes") }
        for (key, value) in request.attributes {
            guard key.wholeMatch(of: /[A-Za-z0-9_.-]{1,64}/) != nil else {
                throw ServiceError(.badRequest, "attribute '\(key.prefix(64))': a name is 1 to 64 letters, digits, '_', '.' or '-'")
            }
            guard value.utf8.count <= 1024 else { throw ServiceError(.badRequest, "attribute '\(key)': a value is at most 1024 bytes") }
        }
        let json = String(decoding: try JSONEncoder().encode(request.attributes), as: UTF8.self)
        let rows = try await database.query(
            "UPDATE users SET attributes = \(json)::jsonb WHERE org = \(request.org) AND id = \(request.id) RETURNING id", logger: logger)
        guard try await rows.collect().count == 1 else {
            throw ServiceError(.notFound, "no user '\(request.id.prefix(32))' in org '\(request.org.prefix(32))'")
        }
        return try await user(org: request.org, id: request.id)
    }

    package func setUserDisabled(_ request: DisableRequest) async throws -> User {
        try await database.query("UPDATE users SET disabled = \(request.disabled) WHERE org = \(request.org) AND id = \(request.id)", logger: logger)
        return try await user(org: request.org, id: request.id)
    }

    package func createAgent(_ request: AgentCreation) async throws -> Agent {
        guard !request.name.isEmpty, request.name.count <= 64 else { throw ServiceError(.badRequest, "an agent needs a name of 1-64 characters") }
        let owner = try await user(org: request.org, id: request.owner)
        let agent = Agent(
            id: Self.newID("agt"), org: request.org, name: request.name, agentClass: request.agentClass.isEmpty ? "default" : request.agentClass,
            owner: owner.id, disabled: false)
        do {
            try await database.query(
                "INSERT INTO agents (id, org, name, agent_class, owner) VALUES (\(agent.id), \(agent.org), \(agent.name), \(agent.agentClass), \(agent.owner))",
                logger: logger
            )
        } catch {
            throw mapped(error, "agent '\(agent.name.prefix(64))' in org '\(agent.org.prefix(32))'")
        }
        return agent
    }

    package func agents(org: String) async throws -> [Agent] {
        _ = try await self.org(org)
        var agents: [Agent] = []
        let rows = try await database.query(
            "SELECT id, name, agent_class, owner, disabled FROM agents WHERE org = \(org) ORDER BY name", logger: logger)
        for try await (id, name, agentClass, owner, disabled) in rows.decode((String, String, String, String, Bool).self) {
            agents.append(Agent(id: id, org: org, name: name, agentClass: agentClass, owner: owner, disabled: disabled))
        }
        return agents
    }

    func agent(org: String, id: String) async throws -> Agent {
        let rows = try await database.query("SELECT name, agent_class, owner, disabled FROM agents WHERE org = \(org) AND id = \(id)", logger: logger)
        for try await (name, agentClass, owner, disabled) in rows.decode((String, String, String, Bool).self) {
            return Agent(id: id, org: org, name: name, agentClass: agentClass, owner: owner, disabled: disabled)
        }
        throw ServiceError(.notFound, "no agent '\(id.prefix(32))' in org '\(org.prefix(32))'")
    }

    package func setAgentDisabled(_ request: DisableRequest) async throws -> Agent {
        try await database.query("UPDATE agents SET disabled = \(request.disabled) WHERE org = \(request.org) AND id = \(request.id)", logger: logger)
        return try await agent(org: request.org, id: request.id)
    }

    package func createServiceAccount(_ request: ServiceAccountCreation) async throws -> ServiceAccount {
        guard !request.name.isEmpty, request.name.count <= 64 else {
            throw ServiceError(.badRequest, "a service account needs a name of 1-64 characters")
        }
        let account = ServiceAccount(id: Self.newID("svc"), org: request.org, name: request.name, disabled: false)
        do {
            try await database.query(
                "INSERT INTO service_accounts (id, org, name) VALUES (\(account.id), \(account.org), \(account.name))", logger: logger)
        } catch {
            throw mapped(error, "service account '\(account.name.prefix(64))' in org '\(account.org.prefix(32))'")
        }
        return account
    }

    package func serviceAccounts(org: String) async throws -> [ServiceAccount] {
        _ = try await self.org(org)
        var accounts: [ServiceAccount] = []
        let rows = try await database.query("SELECT id, name, disabled FROM service_accounts WHERE org = \(org) ORDER BY name", logger: logger)
        for try await (id, name, disabled) in rows.decode((String, String, Bool).self) {
            accounts.append(ServiceAccount(id: id, org: org, name: name, disabled: disabled))
        }
        return accounts
    }

    package func setServiceAccountDisabled(_ request: DisableRequest) async throws -> ServiceAccount {
        try await database.query(
            "UPDATE service_accounts SET disabled = \(request.disabled) WHERE org = \(request.org) AND id = \(request.id)", logger: logger)
        guard let account = try await serviceAccounts(org: request.org).first(where: { $0.id == request.id }) else {
            throw ServiceError(.notFound, "no service account '\(request.id.prefix(32))' in org '\(request.org.prefix(32))'")
        }
        return account
    }

    /// The agent with its owner and org, if it may get a token now. A service account resolves as
    /// an agent of class `service-account` acting for itself.
    package func resolve(_ reference: AgentReference) async throws -> ResolvedAgent {
        if reference.agent.hasPrefix("svc_") {
            guard let account = try await serviceAccounts(org: reference.org).first(where: { $0.id == reference.agent }) else {
                throw ServiceError(.notFound, "no agent '\(reference.agent.prefix(32))' in org '\(reference.org.prefix(32))'")
            }
            guard !account.disabled else { throw ServiceError(.forbidden, "service account '\(account.id)' is disabled") }
            return ResolvedAgent(
                agent: Agent(id: account.id, org: account.org, name: account.name, agentClass: "service-account", owner: account.id, disabled: false),
                owner: User(id: account.id, org: account.org, email: "", role: "service-account", disabled: false),
                org: try await org(reference.org)
            )
        }
        // One query for the agent, its user and its org: this check is on every token's path.
        let rows = try await database.query(
            """
            SELECT a.name, a.agent_class, a.owner, a.disabled, u.email, u.role, u.disabled, u.attributes::text, o.name, o.max_token_lifetime,
                o.raw_api_keys_on_mcp
            FROM agents a JOIN users u ON u.id = a.owner AND u.org = a.org JOIN orgs o ON o.id = a.org
            WHERE a.org = \(reference.org) AND a.id = \(reference.agent)
            """, logger: logger)
        for try await row in rows.decode((String, String, String, Bool, String, String, Bool, String, String, Int, Bool).self) {
            let agent = Agent(id: reference.agent, org: reference.org, name: row.0, agentClass: row.1, owner: row.2, disabled: row.3)
            let owner = User(id: row.2, org: reference.org, email: row.4, role: row.5, disabled: row.6, attributes: Self.attributes(row.7))
            guard !agent.disabled else { throw ServiceError(.forbidden, "agent '\(agent.id)' is disabled") }
            guard !owner.disabled else { throw ServiceError(.forbidden, "the user agent '\(agent.id)' acts for is disabled") }
            return ResolvedAgent(
                agent: agent, owner: owner, org: Org(id: reference.org, name: row.8, maxTokenLifetime: row.9, rawAPIKeysOnMCP: row.10))
        }
        throw ServiceError(.notFound, "no agent '\(reference.agent.prefix(32))' in org '\(reference.org.prefix(32))'")
    }

    // MARK: Bootstrap

    /// The first org and its owner, when no org exists (replicas asking together create them once:
    /// the check and the inserts run in one transaction under an advisory lock).
    package func bootstrap(_ request: BootstrapRequest) async throws -> BootstrapOutcome {
        guard request.ownerEmail.contains("@"), request.ownerEmail.count <= 254 else {
            throw ServiceError(.badRequest, "the owner's email is not valid")
        }
        let org = Org(id: request.org, name: request.name.isEmpty ? request.org : request.name, maxTokenLifetime: 3600)
        let owner = User(id: Self.newID("usr"), org: org.id, email: request.ownerEmail.lowercased(), role: "owner", disabled: false)
        do {
            return try await database.transaction(logger: logger) { connection -> BootstrapOutcome in
                try await connection.advisoryTransactionLock("warden.policy.bootstrap", logger: logger)
                let existing = try await connection.count("SELECT count(*) FROM orgs", logger: logger)
                guard existing == 0 else { return BootstrapOutcome(created: false, org: nil, owner: nil) }
                let insertOrg: PostgresQuery =
                    "INSERT INTO orgs (id, name, max_token_lifetime) VALUES (\(org.id), \(org.name), \(org.maxTokenLifetime))"
                try await connection.query(insertOrg, logger: logger)
                let insertOwner: PostgresQuery =
                    "INSERT INTO users (id, org, email, role) VALUES (\(owner.id), \(owner.org), \(owner.email), 'owner')"
                try await connection.query(insertOwner, logger: logger)
                logger.notice("bootstrap: created the first org and its owner", metadata: ["org": "\(org.id)", "user": "\(owner.id)"])
                return BootstrapOutcome(created: true, org: org, owner: owner)
            }
        } catch {
            throw mapped(error, "org '\(org.id.prefix(32))'")
        }
    }

    // MARK: Federation

    package func trust(_ issuer: TrustedIssuer) async throws -> TrustedIssuer {
        guard let url = URLComponents(string: issuer.issuer), url.scheme == "https" || url.host == "127.0.0.1" || url.host == "localhost" else {
            throw ServiceError(.badRequest, "the issuer must be an https URL")
        }
        guard !issuer.audience.isEmpty, !issuer.userClaim.isEmpty, !issuer.agentClaim.isEmpty else {
            throw ServiceError(.badRequest, "a trust needs an audience and the user and agent claims")
        }
        var issuer = issuer
        if let jwksURL = issuer.jwksURL, !jwksURL.isEmpty {
            guard let url = URLComponents(string: jwksURL),
                url.scheme == "https" || (url.scheme == "http" && ["127.0.0.1", "localhost", "::1"].contains(url.host ?? ""))
            else {
                throw ServiceError(.badRequest, "the JWKS URL must be https (http only on loopback)")
            }
            guard issuer.jwks.isEmpty else { throw ServiceError(.badRequest, "give either a JWKS document or a JWKS URL, not both") }
        } else {
            issuer.jwksURL = nil
            guard issuer.jwks.contains("\"keys\"") else { throw ServiceError(.badRequest, "a trust needs a JWKS document or a JWKS URL") }
        }
        if issuer.rolesClaim?.isEmpty == true { issuer.rolesClaim = nil }
        _ = try await org(issuer.org)
        try await database.query(
            """
            INSERT INTO trusted_issuers (org, issuer, jwks, jwks_url, audience, user_claim, agent_claim, roles_claim)
            VALUES (\(issuer.org), \(issuer.issuer), \(issuer.jwks), \(issuer.jwksURL), \(issuer.audience), \(issuer.userClaim), \(issuer.agentClaim), \(issuer.rolesClaim))
            ON CONFLICT (org, issuer) DO UPDATE SET jwks = EXCLUDED.jwks, jwks_url = EXCLUDED.jwks_url, audience = EXCLUDED.audience,
                user_claim = EXCLUDED.user_claim, agent_claim = EXCLUDED.agent_claim, roles_claim = EXCLUDED.roles_claim
            """,
            logger: logger
        )
        return issuer
    }

    package func trusts(org: String?, issuer: String?) async throws -> [TrustedIssuer] {
        var found: [TrustedIssuer] = []
        let rows = try await database.query(
            """
            SELECT org, issuer, jwks, jwks_url, audience, user_claim, agent_claim, roles_claim FROM trusted_issuers
            WHERE (\(org)::text IS NULL OR org = \(org)) AND (\(issuer)::text IS NULL OR issuer = \(issuer)) ORDER BY org, issuer
            """,
            logger: logger
        )
        for try await (org, issuer, jwks, jwksURL, audience, userClaim, agentClaim, rolesClaim) in rows.decode(
            (String, String, String, String?, String, String, String, String?).self
        ) {
            found.append(
                TrustedIssuer(
                    org: org, issuer: issuer, jwks: jwks, jwksURL: jwksURL, audience: audience, userClaim: userClaim, agentClaim: agentClaim,
                    rolesClaim: rolesClaim
                )
            )
        }
        return found
    }

    /// The enabled agent named `name` in `org`, owned by the enabled user with `email`.
    package func resolveFederated(org: String, email: String, agentName: String) async throws -> ResolvedAgent {
        let users = try await users(org: org)
        guard let user = users.first(where: { $0.email == email.lowercased() }) else {
            throw ServiceError(.notFound, "no user with that email in the org")
        }
        guard let agent = try await agents(org: org).first(where: { $0.name == agentName }) else {
            throw ServiceError(.notFound, "no agent with that name in the org")
        }
        guard agent.owner == user.id else { throw ServiceError(.forbidden, "the agent does not act for that user") }
        return try await resolve(AgentReference(org: org, agent: agent.id))
    }
}
