import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// The signing keys this replica holds in memory, loaded once (and created on first use).
actor SigningKeyRing {
    let store: SigningKeyStore
    let startup: StartupGate
    private var loaded: [SigningKey] = []
    private var loadedAt = ContinuousClock.now
    private var issuer: AgentTokenIssuer?

    init(store: SigningKeyStore, startup: StartupGate) {
        self.store = store
        self.startup = startup
    }

    /// The active keys, newest (the signer) first; re-read every minute so that a rotation made on
    /// another replica is followed.
    func keys() async throws -> [SigningKey] {
        if loaded.isEmpty || ContinuousClock.now - loadedAt > .seconds(60) {
            try await startup.wait()
            adopt(try await store.activeKeys())
        }
        return loaded
    }

    func rotate() async throws -> [SigningKey] {
        try await startup.wait()
        adopt(try await store.rotate())
        return loaded
    }

    private func adopt(_ keys: [SigningKey]) {
        if keys.first?.kid != loaded.first?.kid { issuer = nil }
        loaded = keys
        loadedAt = .now
    }

    static let maximumLifetime = 24 * 3600

    func sign(_ request: TokenSigningRequest) async throws -> SignedToken {
        guard (1...Self.maximumLifetime).contains(request.lifetimeSeconds) else {
            throw ServiceError(.badRequest, "token lifetime must be 1 to \(Self.maximumLifetime) seconds")
        }
        guard !request.agent.isEmpty, !request.org.isEmpty, !request.user.isEmpty, !request.issuer.isEmpty, !request.audience.isEmpty else {
            throw ServiceError(.badRequest, "a token needs an issuer, an audience, an agent, an org and a user")
        }
        guard let current = try await keys().first else { throw ServiceError(.unavailable, "no signing key") }
        if issuer == nil { issuer = await AgentTokenIssuer(key: current) }
        let now = Int64(Date().timeIntervalSince1970)
        let claims = AgentTokenClaims(
            iss: request.issuer, aud: request.audience, sub: request.agent, org: request.org, usr: request.user,
            scope: request.scopes.joined(separator: " "), jti: AgentTokenIssuer.newTokenID(), iat: now, nbf: now,
            exp: now + Int64(request.lifetimeSeconds),
            roles: request.roles.flatMap { $0.isEmpty ? nil : Array($0.prefix(64)) }, clientID: request.client
        )
        let token = try await issuer!.sign(claims)
        return SignedToken(token: token, tokenID: claims.jti, expiresAt: claims.exp)
    }
}
