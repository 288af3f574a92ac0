import Crypto
import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// What a signed-in user grants a client, and the tokens that follow: consents (remembered per
/// user and client), single-use codes that live a minute, and refresh tokens rotated on every use.
/// A refresh token belongs to a family (one per code); presenting a used one — someone else holds
/// its successor — revokes the family, and a code presented twice revokes what the first use got.
package struct AuthorizationGrants: Sendable {
    let database: DatabasePool
    let signIns: SignIns
    let clients: AuthorizationClients
    let keyRing: SigningKeyRing
    let client: ServiceClient
    let audit: @Sendable (AuditEvent) async -> Void
    let logger: Logger

    static let codeLifetime: Double = 60
    static let refreshLifetime: Double = 30 * 86400
    static let familyLifetime: Double = 90 * 86400
    static let accessLifetime = 900
    /// The scopes a client may ask for: `mcp` (the gateway's tools) and `offline_access` (refresh tokens, which are issued anyway).
    package static let supportedScopes: Set<String> = ["mcp", "offline_access"]

    // MARK: Authorization

    package func authorize(_ attempt: AuthorizationAttempt) async throws -> AuthorizationOutcome {
        let session = try await signIns.session(SessionReference(token: attempt.session))
        if let csrf = attempt.csrf, !Self.same(csrf, session.csrf) {
            throw ServiceError(.forbidden, "the form's CSRF token is missing or wrong; open the page again")
        }
        let client = attempt.client
        if client.kind == .registered, client.org != session.org {
            throw ServiceError(.forbidden, "\(client.name) is registered for another org than yours (\(session.org))")
        }
        if client.kind != .registered, try await !clients.settings(org: session.org).dynamicClients {
            throw ServiceError(.forbidden, "org \(session.org) accepts only clients its admins registered; ask them to add \(client.name)")
        }
        let agent: String
        if attempt.csrf == nil {
            // Only a remembered consent covering every scope asked for answers without the page.
            var remembered: String?
            for try await (agent, scopes) in try await database.query(
                "SELECT agent, scopes FROM authz_consents WHERE org = \(session.org) AND user_id = \(session.user) AND client_id = \(client.id)",
                logger: logger
            ).decode((String, [String]).self) where Set(attempt.scopes).isSubset(of: Set(scopes)) {
                remembered = agent
            }
            guard let remembered else { return AuthorizationOutcome(code: nil, session: session) }
            agent = remembered
        } else {
            let created = try await clientAgent(for: client, session: session)
            agent = created.id
            if created.disabled { try await enableWithdrawn(created) }
            try await database.query(
                """
                INSERT INTO authz_consents (org, user_id, client_id, scopes, agent) VALUES (\(session.org), \(session.user), \(client.id),
                    \(attempt.scopes), \(agent))
                ON CONFLICT (org, user_id, client_id) DO UPDATE SET scopes = excluded.scopes, agent = excluded.agent, granted_at = now()
                """, logger: logger)
            await audit(
                AuditEvent(
                    service: .vault, action: "oauth.consent.granted", outcome: .success, org: session.org, actor: "user:\(session.user)",
                    target: "agent:\(agent)", detail: "\(client.name) (\(client.id.prefix(256))) for \(attempt.scopes.joined(separator: " "))"))
        }
        let code = SignIns.randomToken()
        try await database.query(
            """
            INSERT INTO authz_codes (code_hash, family, client_id, org, user_id, agent, redirect_uri, redirect_presented, code_challenge, scopes,
                resource, roles, expires_at)
            VALUES (\(SignIns.digest(code)), \(Self.newID()), \(client.id), \(session.org), \(session.user), \(agent), \(attempt.redirectURI),
                \(attempt.redirectPresented), \(attempt.codeChallenge), \(attempt.scopes), \(attempt.resource), \(session.roles),
                \(Date().addingTimeInterval(Self.codeLifetime)))
            """, logger: logger)
        try await database.query("DELETE FROM authz_codes WHERE expires_at < now() - interval '1 hour'", logger: logger)
        return AuthorizationOutcome(code: code, session: session)
    }

    /// A consent given again enables the agent its withdrawal disabled; one an admin disabled stays so.
    func enableWithdrawn(_ agent: Agent) async throws {
        var withdrawn = false
        for try await _ in try await database.query(
            "DELETE FROM authz_withdrawn_agents WHERE org = \(agent.org) AND agent = \(agent.id) RETURNING agent", logger: logger)
        {
            withdrawn = true
        }
        guard withdrawn else {
            throw ServiceError(.forbidden, "\(agent.name) was disabled by your organization's admins; ask them to enable agent \(agent.id)")
        }
        _ = try await client.call(PrincipalEndpoints.setAgentDisabled, DisableRequest(org: agent.org, id: agent.id, disabled: false))
    }

    /// The agent the client acts as for this user (one per pair, named after the client).
    func clientAgent(for client: AuthorizationClient, session: SignInSession) async throws -> Agent {
        // 64 bits of the client id and user: no client id an attacker picks reaches another's agent.
        let digest = SHA256.hash(data: Data("\(client.id)\n\(session.user)".utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
        let name = "\(client.name.prefix(40)) #\(digest)"
        let agent = try await self.client.call(
            PrincipalEndpoints.agentForClient, AgentCreation(org: session.org, name: name, agentClass: "oauth-client", owner: session.user))
        guard agent.agentClass == "oauth-client" else {
            throw ServiceError(.conflict, "agent '\(name)' exists and is not an OAuth client's; ask your organization's admins")
        }
        return agent
    }

    // MARK: Tokens

    package func token(_ grant: TokenGrant) async throws -> TokenGrantOutcome {
        switch grant.kind {
        case .authorizationCode: return try await exchangeCode(grant)
        case .refreshToken: return try await refresh(grant)
        }
    }

    /// A grant: what a code was issued for, and the refresh tokens that follow it.
    struct Family: Sendable {
        var id: String
        var client: String
        var org: String
        var user: String
        var agent: String
        var scopes: [String]
        var resource: String
        /// From the org's identity provider, for the tokens' `roles`.
        var roles: [String]?
        /// The client's kind when it still exists; nil once removed.
        var clientKind: String?
        var dynamicClientsAllowed: Bool

        /// Why the family may no longer get tokens, if so: its client was removed, or its org no
        /// longer accepts clients its admins did not register.
        var clientRefusal: String? {
            guard let clientKind else { return "the client was removed" }
            guard clientKind == AuthorizationClient.Kind.registered.rawValue || dynamicClientsAllowed else {
                return "org \(org) accepts only clients its admins registered"
            }
            return nil
        }
    }

    /// What a grant came to: tokens, or a refusal (which may have spent a code or revoked a family).
    enum Step: Sendable {
        case granted(Family, TokenGrantOutcome, expiresAt: Int64)
        case refused(String, String, revoked: AgentReference?)
    }

    func exchangeCode(_ grant: TokenGrant) async throws -> TokenGrantOutcome {
        guard let code = grant.code, !code.isEmpty else { return Self.refused("invalid_request", "code is required") }
        guard let verifier = grant.codeVerifier, !verifier.isEmpty else {
            return Self.refused("invalid_request", "code_verifier is required (PKCE with S256)")
        }
        let codeHash = SignIns.digest(code)
        var claimed: AuthorizationCodeClaim.Row?
        for try await row in try await database.execute(AuthorizationCodeClaim(codeHash: codeHash), logger: logger) { claimed = row }
        guard let (family, uri, presented, challenge, expired) = claimed else {
            return await finish(try await unclaimedCode(codeHash), grantName: "authorization code")
        }
        // A refused code stays spent: a wrong verifier, client or redirect URI ends it.
        func refused(_ error: String, _ description: String) async -> TokenGrantOutcome {
            await finish(.refused(error, description, revoked: nil), grantName: "authorization code")
        }
        guard !expired else { return await refused("invalid_grant", "the code has expired (codes live 60 seconds)") }
        guard family.client == grant.clientID else { return await refused("invalid_grant", "the code was issued to another client") }
        // The redirect URI is repeated when the authorization request named it (RFC 6749 §4.1.3).
        guard grant.redirectURI == uri || (grant.redirectURI == nil && !presented) else {
            return await refused("invalid_grant", "redirect_uri differs from the authorization request's")
        }
        guard Self.pkceMatches(verifier: verifier, challenge: challenge) else {
            return await refused("invalid_grant", "the code_verifier does not match the code_challenge")
        }
        if let resource = grant.resource, resource != family.resource {
            return await refused("invalid_target", "the resource differs from the authorization request's")
        }
        if let refusal = family.clientRefusal { return await refused("invalid_grant", refusal) }
        let refresh = Self.refreshToken(for: AgentReference(org: family.org, agent: family.agent))
        let step = await issuing(
            family, refresh: refresh, grant: grant,
            store: GrantFamilyCreation(
                family: family, refreshHash: SignIns.digest(refresh), refreshExpiry: Date().addingTimeInterval(Self.refreshLifetime)),
            undo: [
                "DELETE FROM authz_families WHERE id = \(family.id)",
                "UPDATE authz_codes SET used_at = NULL WHERE code_hash = \(codeHash)",
            ])
        return await finish(try step.get(), grantName: "authorization code")
    }

    /// Why a code could not be claimed: unknown, or used before (then what its first use got ends:
    /// whoever used it first may be an attacker).
    func unclaimedCode(_ codeHash: ByteBuffer) async throws -> Step {
        var found: (family: String, org: String, agent: String)?
        for try await row in try await database.query(
            "SELECT family, org, agent FROM authz_codes WHERE code_hash = \(codeHash)", logger: logger
        ).decode((String, String, String).self) {
            found = row
        }
        guard let found else { return .refused("invalid_grant", "the code is not valid", revoked: nil) }
        var issued = false
        for try await _ in try await database.query(
            "UPDATE authz_families SET revoked_at = now() WHERE id = \(found.family) AND revoked_at IS NULL RETURNING id", logger: logger)
        {
            issued = true
        }
        return .refused(
            "invalid_grant", issued ? "the code was already used; the tokens issued for it are revoked" : "the code was already used",
            revoked: issued ? AgentReference(org: found.org, agent: found.agent) : nil)
    }

    func refresh(_ grant: TokenGrant) async throws -> TokenGrantOutcome {
        guard let token = grant.refreshToken, !token.isEmpty else { return Self.refused("invalid_request", "refresh_token is required") }
        let tokenHash = SignIns.digest(token)
        // A refresh token names its org and agent (`<org>~<agent>~<secret>`), so policy's check of
        // the agent runs while the token is claimed; the claim checks that the names are the family's.
        let parts = token.split(separator: "~")
        guard parts.count == 3 else { return Self.refused("invalid_grant", "the refresh token is not valid") }
        let named = AgentReference(org: String(parts[0]), agent: String(parts[1]))
        async let resolved = resolve(named)
        let refresh = Self.refreshToken(for: named)
        // Claimed by the statement that reads it, as codes are, and its successor stored by the same
        // statement when the grant may go on.
        let claim = RefreshTokenClaim(
            tokenHash: tokenHash, clientID: grant.clientID, agent: named, resource: grant.resource ?? "", familyLifetime: Self.familyLifetime,
            successorHash: SignIns.digest(refresh), successorExpiry: Date().addingTimeInterval(Self.refreshLifetime))
        var claimed: RefreshTokenClaim.Row?
        for try await row in try await database.execute(claim, logger: logger) { claimed = row }
        guard let (family, expired, revoked, old) = claimed else {
            _ = await resolved
            return await finish(try await unclaimedRefreshToken(tokenHash, grant: grant), grantName: "refresh token")
        }
        let refusal =
            revoked
            ? "the refresh token was revoked; sign in again"
            : expired || old ? "the refresh token has expired; sign in again" : family.clientRefusal
        if let refusal {
            _ = await resolved
            return await finish(.refused("invalid_grant", refusal, revoked: nil), grantName: "refresh token")
        }
        do {
            let (outcome, expiresAt) = try await sign(family, resolved: await resolved, refresh: refresh, grant: grant)
            return await finish(.granted(family, outcome, expiresAt: expiresAt), grantName: "refresh token")
        } catch {
            // Put back what was claimed and stored: a client retrying after a failure is not taken for a thief.
            _ = try? await database.query("DELETE FROM authz_refresh_tokens WHERE token_hash = \(SignIns.digest(refresh))", logger: logger)
            _ = try? await database.query("UPDATE authz_refresh_tokens SET used_at = NULL WHERE token_hash = \(tokenHash)", logger: logger)
            if error is AgentRefusal {
                return await finish(
                    .refused("invalid_grant", "the user or the client's agent is disabled or gone", revoked: nil), grantName: "refresh token")
            }
            throw error
        }
    }

    /// A new refresh token of an agent's grant: `<org>~<agent>~<256 random bits>` (no dots: it is
    /// never taken for a JWT).
    static func refreshToken(for agent: AgentReference) -> String { "\(agent.org)~\(agent.agent)~\(SignIns.randomToken())" }

    /// Why a refresh token could not be claimed: unknown or another client's, another resource, or
    /// used before (someone else holds its successor: the whole family ends).
    func unclaimedRefreshToken(_ tokenHash: ByteBuffer, grant: TokenGrant) async throws -> Step {
        var found: (family: String, client: String, org: String, agent: String, resource: String, used: Bool)?
        for try await row in try await database.query(
            """
            SELECT f.id, f.client_id, f.org, f.agent, f.resource, t.used_at IS NOT NULL
            FROM authz_refresh_tokens t JOIN authz_families f ON f.id = t.family WHERE t.token_hash = \(tokenHash)
            """, logger: logger
        ).decode((String, String, String, String, String, Bool).self) {
            found = row
        }
        guard let found, found.client == grant.clientID else { return .refused("invalid_grant", "the refresh token is not valid", revoked: nil) }
        if found.used {
            try await database.query("UPDATE authz_families SET revoked_at = now() WHERE id = \(found.family)", logger: logger)
            return .refused(
                "invalid_grant", "the refresh token was already used; every token of this grant is revoked",
                revoked: AgentReference(org: found.org, agent: found.agent))
        }
        return .refused("invalid_target", "the resource differs from the grant's", revoked: nil)
    }

    /// Stores the grant's next refresh token (`store`) while policy checks the agent, then signs the
    /// access token. When the agent is refused, or anything fails, `undo` puts back what was claimed
    /// and stored, so that a client retrying after a failure is not taken for a thief.
    func issuing(_ family: Family, refresh: String, grant: TokenGrant, store: GrantFamilyCreation, undo: [PostgresQuery]) async
        -> Result<Step, any Error>
    {
        async let resolved = resolve(family)
        do {
            for try await _ in try await database.execute(store, logger: logger) {}
            let (outcome, expiresAt) = try await sign(family, resolved: await resolved, refresh: refresh, grant: grant)
            return .success(.granted(family, outcome, expiresAt: expiresAt))
        } catch {
            _ = await resolved
            for statement in undo { _ = try? await database.query(statement, logger: logger) }
            if error is AgentRefusal {
                return .success(.refused("invalid_grant", "the user or the client's agent is disabled or gone", revoked: nil))
            }
            return .failure(error)
        }
    }

    func finish(_ step: Step, grantName: String) async -> TokenGrantOutcome {
        switch step {
        case .granted(let family, let outcome, let expiresAt):
            await audit(
                AuditEvent(
                    service: .vault, action: "token.issued", outcome: .success, org: family.org, actor: "oauth-client:\(family.client.prefix(256))",
                    target: "agent:\(family.agent)", detail: "an agent token for \(family.user) (\(grantName)), expires at \(expiresAt)"))
            return outcome
        case .refused(let error, let description, let revoked):
            if let revoked { await auditReuse(grantName, revoked) }
            return TokenGrantOutcome(error: error, errorDescription: description, revoked: revoked)
        }
    }

    /// An access token for the family's agent, if it and its user are still enabled (nil if not),
    /// with the family's next refresh token and the access token's expiry.
    func sign(_ family: Family, resolved check: Result<ResolvedAgent, ServiceError>, refresh: String, grant: TokenGrant) async throws
        -> (TokenGrantOutcome, Int64)
    {
        let resolved: ResolvedAgent
        switch check {
        case .success(let agent): resolved = agent
        case .failure(let error):
            guard error.code == .forbidden || error.code == .notFound else { throw error }
            throw AgentRefusal()
        }
        let signed = try await keyRing.sign(
            TokenSigningRequest(
                issuer: grant.issuer, audience: family.resource, agent: family.agent, org: family.org, user: family.user,
                scopes: family.scopes.filter { $0 != "offline_access" }, lifetimeSeconds: min(Self.accessLifetime, resolved.org.maxTokenLifetime),
                roles: family.roles, client: family.client))
        let outcome = TokenGrantOutcome(
            accessToken: signed.token, refreshToken: refresh, expiresIn: max(1, Int(signed.expiresAt - Int64(Date().timeIntervalSince1970))),
            scope: family.scopes.joined(separator: " "))
        return (outcome, signed.expiresAt)
    }

    /// The family's agent or its user is disabled or gone: what the grant wrote is undone (the grant
    /// is refused, as it will be again).
    struct AgentRefusal: Error {}

    func resolve(_ family: Family) async -> Result<ResolvedAgent, ServiceError> {
        await resolve(AgentReference(org: family.org, agent: family.agent))
    }

    func resolve(_ agent: AgentReference) async -> Result<ResolvedAgent, ServiceError> {
        do {
            return .success(try await client.call(PrincipalEndpoints.resolveAgent, agent))
        } catch {
            return .failure(error)
        }
    }

    func auditReuse(_ what: String, _ revoked: AgentReference) async {
        await audit(
            AuditEvent(
                service: .vault, action: "token.reuse", outcome: .denied, org: revoked.org, actor: "agent:\(revoked.agent)",
                target: "agent:\(revoked.agent)",
                detail: "a \(what) was presented again: the grant's tokens are revoked"))
    }

    // MARK: Revocation and introspection

    package func revoke(_ reference: RefreshTokenReference) async throws -> RevokedGrant {
        for try await (family, org, agent) in try await database.query(
            """
            UPDATE authz_families f SET revoked_at = coalesce(f.revoked_at, now()) FROM authz_refresh_tokens t
            WHERE t.token_hash = \(SignIns.digest(reference.token)) AND f.id = t.family AND (\(reference.clientID ?? "") = '' OR f.client_id = \(reference.clientID ?? ""))
            RETURNING f.id, f.org, f.agent
            """, logger: logger
        ).decode((String, String, String).self) {
            logger.info("refresh-token family revoked", metadata: ["family": "\(family)", "org": "\(org)"])
            return RevokedGrant(agent: AgentReference(org: org, agent: agent))
        }
        return RevokedGrant(agent: nil)
    }

    package func introspect(_ reference: RefreshTokenReference) async throws -> RefreshTokenState {
        for try await (client, org, user, agent, scopes, resource, issued, expires) in try await database.query(
            """
            SELECT f.client_id, f.org, f.user_id, f.agent, f.scopes, f.resource, extract(epoch FROM t.issued_at)::bigint,
                extract(epoch FROM t.expires_at)::bigint
            FROM authz_refresh_tokens t JOIN authz_families f ON f.id = t.family
            WHERE t.token_hash = \(SignIns.digest(reference.token)) AND t.used_at IS NULL AND t.expires_at > now() AND f.revoked_at IS NULL
            """, logger: logger
        ).decode((String, String, String, String, [String], String, Int64, Int64).self)
        where reference.clientID == nil || reference.clientID == client {
            return RefreshTokenState(
                active: true, clientID: client, org: org, user: user, agent: agent, scope: scopes.joined(separator: " "), audience: resource,
                issuedAt: issued, expiresAt: expires)
        }
        return RefreshTokenState(active: false)
    }

    // MARK: Consents

    func owner(_ owner: ConsentOwner, csrf: String?, requireCSRF: Bool) async throws -> (org: String, user: String) {
        if let token = owner.session {
            let session = try await signIns.session(SessionReference(token: token))
            if requireCSRF, !Self.same(csrf ?? "", session.csrf) {
                throw ServiceError(.forbidden, "the form's CSRF token is missing or wrong; open the page again")
            }
            return (session.org, session.user)
        }
        guard let org = owner.org, let user = owner.user else { throw ServiceError(.badRequest, "name the org and the user, or a session") }
        return (org, user)
    }

    package func consents(_ owner: ConsentOwner) async throws -> ConsentList {
        let (org, user) = try await self.owner(owner, csrf: nil, requireCSRF: false)
        var consents: [Consent] = []
        for try await (client, name, scopes, agent, granted) in try await database.query(
            """
            SELECT c.client_id, coalesce(k.name, c.client_id), c.scopes, c.agent, extract(epoch FROM c.granted_at)::bigint
            FROM authz_consents c LEFT JOIN authz_clients k ON k.id = c.client_id
            WHERE c.org = \(org) AND c.user_id = \(user) ORDER BY c.granted_at
            """, logger: logger
        ).decode((String, String, [String], String, Int64).self) {
            consents.append(Consent(clientID: client, clientName: name, scopes: scopes, agent: agent, grantedAt: granted))
        }
        return ConsentList(org: org, user: user, consents: consents)
    }

    package func withdraw(_ reference: ConsentReference) async throws -> RevokedGrant {
        let (org, user) = try await owner(reference.owner, csrf: reference.csrf, requireCSRF: true)
        var agent: String?
        for try await found in try await database.query(
            "SELECT agent FROM authz_consents WHERE org = \(org) AND user_id = \(user) AND client_id = \(reference.clientID)", logger: logger
        ).decode(String.self) {
            agent = found
        }
        guard let agent else { throw ServiceError(.notFound, "no consent for client '\(reference.clientID.prefix(256))'") }
        // Noted first (a later consent may enable the agent again), then the agent disabled; if
        // either fails, the consent is still there to withdraw again.
        try await database.query("INSERT INTO authz_withdrawn_agents (org, agent) VALUES (\(org), \(agent)) ON CONFLICT DO NOTHING", logger: logger)
        _ = try await client.call(PrincipalEndpoints.setAgentDisabled, DisableRequest(org: org, id: agent, disabled: true))
        try await database.transaction(logger: logger) { connection in
            try await connection.query(
                "DELETE FROM authz_consents WHERE org = \(org) AND user_id = \(user) AND client_id = \(reference.clientID)", logger: logger)
            try await connection.query(
                """
                UPDATE authz_families SET revoked_at = now()
                WHERE org = \(org) AND user_id = \(user) AND client_id = \(reference.clientID) AND revoked_at IS NULL
                """, logger: logger)
        }
        await audit(
            AuditEvent(
                service: .vault, action: "oauth.consent.withdrawn", outcome: .success, org: org, actor: "user:\(user)", target: "agent:\(agent)",
                detail: "client \(reference.clientID.prefix(256)): its tokens are revoked and its agent disabled"))
        return RevokedGrant(agent: AgentReference(org: org, agent: agent))
    }

    // MARK: Helpers

    static func refused(_ error: String, _ description: String) -> TokenGrantOutcome {
        TokenGrantOutcome(error: error, errorDescription: description)
    }

    /// RFC 7636 S256: base64url(SHA-256(verifier)) == challenge, the verifier 43-128 unreserved characters.
    package static func pkceMatches(verifier: String, challenge: String) -> Bool {
        guard (43...128).contains(verifier.utf8.count),
            verifier.utf8.allSatisfy({ byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || [0x2D, 0x2E, 0x5F, 0x7E].contains(byte)
            })
        else { return false }
        return same(Base64URL.encode(Array(SHA256.hash(data: Data(verifier.utf8)))), challenge)
    }

    /// Constant-time string comparison.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    static func newID() -> String {
        "fam_" + (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
