import Foundation
import Hummingbird
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import WardenContracts
import WardenIdentity
import WardenNATS
import WardenServiceKit

/// The vault service. Keeps secrets encrypted under a key hierarchy (a root key in its provider,
/// a key per org, a data key per record: `KeyHierarchy`, `Envelope`), resolves them for services
/// at execution time (agents never see them), and signs agent tokens with keys it keeps the same way.
///
/// The platform gives it configuration, PostgreSQL (schema `vault`), NATS, migrations, heartbeats,
/// a health responder on `warden.vault.health` and `/livez`, `/readyz`, `/metrics`. Requests wait
/// until the keys are open (`VaultKeysService`).
///
/// `WARDEN_VAULT_KEY_CACHE_SECONDS` (default 60): how long an unwrapped org key is kept in memory.
package struct VaultService: WardenServiceDefinition {
    package static let service = WardenServiceName.vault
    package static let migrations: [Migration] = [
        PlatformMigrations.instances, VaultMigrations.signingKeys, APIKeyStore.migration, AdminKeyStore.migration, VaultMigrations.envelopes,
        OAuthConnections.migration, AuditNotary.migration, AuthorizationClients.migration,
        SignInProviders.migration, VaultMigrations.orgKeyShares,
    ]

    package let services: [any Service]

    package init(runtime: ServiceRuntime) async throws {
        let environment = ProcessInfo.processInfo.environment
        let cacheSeconds = try Self.cacheSeconds(environment)
        let shares = OrgKeyShares(bus: runtime.bus, replicas: try Self.shareReplicas(environment), database: runtime.database, logger: runtime.logger)
        let keys = KeyHierarchy(database: runtime.database, shares: shares, cacheLifetime: .seconds(cacheSeconds), logger: runtime.logger)
        let keysReady = StartupGate()
        let secrets = SecretStore(database: runtime.database, keys: keys, logger: runtime.logger)
        let rotation = KeyRotation(keys: keys, database: runtime.database, bus: runtime.bus, logger: runtime.logger)
        let hashKey = AccessKeyHashKey()
        let store = SigningKeyStore(database: runtime.database, keys: keys, logger: runtime.logger)
        let keyRing = SigningKeyRing(store: store, startup: keysReady)
        let apiKeys = APIKeyStore(database: runtime.database, hashKey: hashKey, logger: runtime.logger)
        let adminKeys = AdminKeyStore(database: runtime.database, hashKey: hashKey, logger: runtime.logger)
        let opening = VaultKeysService(
            environment: environment, keys: keys, secrets: secrets, signingKeys: store, hashKey: hashKey, startup: runtime.startup,
            ready: keysReady, bus: runtime.bus, database: runtime.database, health: runtime.health, logger: runtime.logger)
        let startup = keysReady
        let client = runtime.client
        let bus = runtime.bus, logger = runtime.logger
        func serve<Request, Response>(_ endpoint: ServiceEndpoint<Request, Response>, _ body: @escaping @Sendable (Request) async throws -> Response)
            -> any Service
        {
            ServiceResponder(endpoint, bus: bus, logger: logger) { request, _ in
                try await startup.wait()
                return try await body(request)
            }
        }
        /// A request about one org's secrets; the platform's own are not reachable this way.
        func serveOrg<Request, Response>(
            _ endpoint: ServiceEndpoint<Request, Response>, _ org: @escaping @Sendable (Request) -> String,
            _ body: @escaping @Sendable (Request) async throws -> Response
        ) -> any Service {
            serve(endpoint) { request in
                _ = try Self.servedOrg(org(request))
                return try await body(request)
            }
        }
        /// Tells every gateway that a value changed (after the change is stored).
        @Sendable func announce(_ org: String, _ path: String?) {
            guard let payload = try? EnvelopeCoding.encoder().encode(SecretChanged(org: org, path: path)) else { return }
            do { try bus.publish(SecretEndpoints.changedSubject, payload: payload) } catch {
                logger.warning("cannot announce a secret change", metadata: ["org": "\(org)", "error": "\(error)"])
            }
        }
        func announcing<Request, Response>(
            _ endpoint: ServiceEndpoint<Request, Response>, _ address: @escaping @Sendable (Request) -> (String, String?),
            _ body: @escaping @Sendable (Request) async throws -> Response
        ) -> any Service {
            serveOrg(endpoint, { address($0).0 }) { request in
                let response = try await body(request)
                announce(address(request).0, address(request).1)
                return response
            }
        }
        let audit = AuditPublisher(bus: bus, logger: logger)
        let oauth = OAuthConnections(
            secrets: secrets, keys: keys, database: runtime.database, allowsLoopbackHTTP: OAuthConnections.allowsLoopbackHTTP(environment),
            announce: { announce($0, $1) }, audit: { await audit.publish($0) }, logger: logger)
        let oauthServices: [any Service] = [
            serveOrg(OAuthEndpoints.setClient, { $0.org }) { try await oauth.setClient($0) },
            serveOrg(OAuthEndpoints.listClients, { $0.org }) { try await oauth.listClients($0) },
            serveOrg(OAuthEndpoints.deleteClient, { $0.org }) { try await oauth.deleteClient($0) },
            serveOrg(OAuthEndpoints.connect, { $0.org }) { try await oauth.connect($0) },
            serveOrg(OAuthEndpoints.status, { $0.org }) { try await oauth.status($0) },
            serveOrg(OAuthEndpoints.disconnect, { $0.org }) { try await oauth.disconnect($0) },
            // The callback and the tokens are the gateway's: it alone holds the redirect and injects.
            ServiceResponder(OAuthEndpoints.complete, bus: bus, logger: logger) { request, context in
                try Self.requireGateway(context)
                try await startup.wait()
                return try await oauth.complete(request)
            },
            ServiceResponder(OAuthEndpoints.token, bus: bus, logger: logger) { request, context in
                try Self.requireGateway(context)
                try await startup.wait()
                _ = try Self.servedOrg(request.org)
                return try await oauth.token(request)
            },
        ]
        // The authorization server's state: the gateway renders its pages and is its only caller.
        func serveGateway<Request, Response>(
            _ endpoint: ServiceEndpoint<Request, Response>, _ body: @escaping @Sendable (Request) async throws -> Response
        ) -> any Service {
            ServiceResponder(endpoint, bus: bus, logger: logger) { request, context in
                guard context.isFrom(.gateway) else { throw ServiceError(.forbidden, "the authorization server answers the gateway only") }
                try await startup.wait()
                return try await body(request)
            }
        }
        let signIns = SignIns(database: runtime.database, client: client, audit: { await audit.publish($0) }, logger: logger)
        let providers = SignInProviders(
            secrets: secrets, database: runtime.database, signIns: signIns, client: client,
            allowsLoopbackHTTP: OAuthConnections.allowsLoopbackHTTP(environment), audit: { await audit.publish($0) }, logger: logger)
        let authorizationClients = AuthorizationClients(database: runtime.database, logger: logger)
        let grants = AuthorizationGrants(
            database: runtime.database, signIns: signIns, clients: authorizationClients, keyRing: keyRing, client: client,
            audit: { await audit.publish($0) }, logger: logger)
        let authorizationServices: [any Service] = [
            serveGateway(AuthorizationEndpoints.registerClient) { try await authorizationClients.register($0) },
            serveGateway(AuthorizationEndpoints.client) { try await authorizationClients.client($0.id, maxAge: $0.maxAge) },
            serveGateway(AuthorizationEndpoints.listClients) {
                AuthorizationClientList(clients: try await authorizationClients.list(org: $0.org.isEmpty ? nil : $0.org))
            },
            serveGateway(AuthorizationEndpoints.removeClient) {
                try await authorizationClients.remove($0)
                return EmptyBody()
            },
            serveGateway(AuthorizationEndpoints.settings) { try await authorizationClients.settings(org: $0.org) },
            serveGateway(AuthorizationEndpoints.setSettings) { try await authorizationClients.setSettings($0) },
            serveGateway(AuthorizationEndpoints.setPassword) {
                try await signIns.setPassword($0)
                return EmptyBody()
            },
            serveGateway(AuthorizationEndpoints.signIn) { request in
                // An org with its own identity provider signs in there, never with a password.
                guard await !providers.isFederated(org: request.org) else {
                    throw ServiceError(.forbidden, "org \(request.org) signs in with its identity provider")
                }
                return try await signIns.signIn(request)
            },
            serveGateway(AuthorizationEndpoints.setProvider) { try await providers.set($0) },
            serveGateway(AuthorizationEndpoints.provider) { try await providers.view(org: $0.org) },
            serveGateway(AuthorizationEndpoints.removeProvider) {
                try await providers.remove(org: $0.org)
                return EmptyBody()
            },
            serveGateway(AuthorizationEndpoints.startFederatedSignIn) { try await providers.start($0) },
            serveGateway(AuthorizationEndpoints.finishFederatedSignIn) { request in
                do {
                    return try await providers.finish(request)
                } catch let error as ServiceError where error.code == .unauthorized {
                    // A refused sign-in at the org's provider is on record, as a refused password is.
                    await audit.publish(
                        AuditEvent(
                            service: .vault, action: "user.sign-in-refused", outcome: .denied, org: request.org, actor: "unknown",
                            target: "oauth sign-in", detail: "at the org's identity provider from \(request.address.prefix(64)): \(error.message)"))
                    throw error
                }
            },
            serveGateway(AuthorizationEndpoints.session) { try await signIns.session($0) },
            serveGateway(AuthorizationEndpoints.signOut) {
                try await signIns.signOut($0)
                return EmptyBody()
            },
            serveGateway(AuthorizationEndpoints.authorize) { try await grants.authorize($0) },
            serveGateway(AuthorizationEndpoints.token) { try await grants.token($0) },
            serveGateway(AuthorizationEndpoints.revoke) { try await grants.revoke($0) },
            serveGateway(AuthorizationEndpoints.introspect) { try await grants.introspect($0) },
            serveGateway(AuthorizationEndpoints.consents) { try await grants.consents($0) },
            serveGateway(AuthorizationEndpoints.withdrawConsent) { try await grants.withdraw($0) },
        ]
        let auditKey = AuditSigningKey(secrets: secrets)
        let notary = AuditNotary(key: auditKey, database: runtime.database, logger: logger)
        let auditKeyServices: [any Service] = [
            // Checkpoints are signed for the audit service alone; the public keys are for anyone.
            ServiceResponder(AuditKeyEndpoints.sign, bus: bus, logger: logger) { request, context in
                guard context.isFrom(.audit) else { throw ServiceError(.forbidden, "audit checkpoints are signed for the audit service only") }
                try await startup.wait()
                return try await notary.sign(request)
            },
            ServiceResponder(AuditKeyEndpoints.signed, bus: bus, logger: logger) { request, context in
                guard context.isFrom(.audit) else { throw ServiceError(.forbidden, "signed audit statements are for the audit service") }
                try await startup.wait()
                return try await notary.signed(request)
            },
            ServiceResponder(AuditKeyEndpoints.retention, bus: bus, logger: logger) { request, context in
                guard context.isFrom(.audit) else { throw ServiceError(.forbidden, "audit retention is set through the audit service") }
                try await startup.wait()
                try await notary.setRetention(request)
                return request
            },
            serve(AuditKeyEndpoints.keys) { _ in try await auditKey.publicKeys() },
        ]
        // Counted on every read: the handle is looked up once.
        let resolved = Counter(label: "warden_vault_resolutions_total", dimensions: [("outcome", "ok")])
        let secretServices: [any Service] = [
            // An OAuth connection's records hold refresh tokens and client secrets: only `warden
            // oauth` (the OAuth endpoints) writes, changes or erases them, and nothing reads them out.
            announcing(SecretEndpoints.write, { ($0.org, $0.path) }) { request in
                try Self.refuseOAuthRecord(request.path)
                return try await secrets.write(request)
            },
            serveOrg(SecretEndpoints.list, { $0.org }) { try await secrets.list($0) },
            serveOrg(SecretEndpoints.show, { $0.org }) { try await secrets.show($0) },
            serveOrg(SecretEndpoints.versions, { $0.org }) { try await secrets.versions($0) },
            announcing(SecretEndpoints.delete, { ($0.org, $0.path) }) { request in
                try Self.refuseOAuthRecord(request.path)
                return try await secrets.delete(request)
            },
            announcing(SecretEndpoints.undelete, { ($0.org, $0.path) }) { request in
                try Self.refuseOAuthRecord(request.path)
                return try await secrets.undelete(request)
            },
            announcing(SecretEndpoints.destroy, { ($0.org, $0.path) }) { request in
                try Self.refuseOAuthRecord(request.path)
                return try await secrets.destroy(request)
            },
            // Values go to the gateway alone, which injects them into downstream servers.
            ServiceResponder(SecretEndpoints.read, bus: bus, logger: logger, executor: runtime.database.executor) { request, context in
                try Self.requireGateway(context)
                try await startup.wait()
                _ = try Self.servedOrg(request.org)
                try Self.refuseOAuthRecord(request.path)
                do {
                    let value = try await secrets.read(request)
                    resolved.increment()
                    return value
                } catch {
                    Counter(label: "warden_vault_resolutions_total", dimensions: [("outcome", (error as? ServiceError)?.code.rawValue ?? "internal")])
                        .increment()
                    throw error
                }
            },
            serve(VaultKeyEndpoints.status) { _ in try await Self.status(keys: keys, database: runtime.database, logger: logger) },
            serve(VaultKeyEndpoints.rotateRootKey) { request in try await rotation.rotateRoot(dryRun: request.dryRun) },
            serve(VaultKeyEndpoints.rotateOrgKey) { request in
                guard let name = request.org else { throw ServiceError(.badRequest, "name the org whose key rotates") }
                // The platform's own key (token signing keys, the API-key hashing key) rotates too.
                return try await rotation.rotateOrg(name == KeyHierarchy.platformOrg ? name : try Self.servedOrg(name), dryRun: request.dryRun)
            },
            serveOrg(VaultKeyEndpoints.reencrypt, { $0.org }) { request in
                try SecretPath.validate(request.path)
                return try await rotation.reencrypt(request)
            },
            announcing(VaultKeyEndpoints.shredOrg, { ($0.org, nil) }) { try await rotation.shred($0) },
        ]
        services =
            [opening] + secretServices + oauthServices + auditKeyServices + authorizationServices + [
                serve(BootstrapEndpoints.adminKey) { _ in BootstrapAdminKey(key: try await adminKeys.bootstrap()) },
                serve(AdminKeyEndpoints.create) { try await adminKeys.create(label: $0.label) },
                serve(AdminKeyEndpoints.list) { _ in AdminKeyList(keys: try await adminKeys.list()) },
                serve(AdminKeyEndpoints.check) { APIKeyReference(id: try await adminKeys.check($0.key)) },
                serve(AdminKeyEndpoints.revoke) {
                    try await adminKeys.revoke($0.id)
                    return EmptyBody()
                },
                ServiceResponder(VaultEndpoints.publicKeys, bus: runtime.bus, logger: runtime.logger) { _, _ in
                    let keys = try await keyRing.keys()
                    return PublicSigningKeys(keys: keys.map { PublicSigningKey(kid: $0.kid, x: Base64URL.encode($0.publicKey.rawPublicKey)) })
                },
                ServiceResponder(VaultEndpoints.rotateKeys, bus: runtime.bus, logger: runtime.logger) { _, _ in
                    let keys = try await keyRing.rotate()
                    return PublicSigningKeys(keys: keys.map { PublicSigningKey(kid: $0.kid, x: Base64URL.encode($0.publicKey.rawPublicKey)) })
                },
                ServiceResponder(VaultEndpoints.signToken, bus: runtime.bus, logger: runtime.logger) { request, _ in
                    try await keyRing.sign(request)
                },
                ServiceResponder(APIKeyEndpoints.create, bus: runtime.bus, logger: runtime.logger) { request, _ in
                    try await startup.wait()
                    return try await apiKeys.create(request)
                },
                ServiceResponder(APIKeyEndpoints.exchange, bus: runtime.bus, logger: runtime.logger) { request, _ in
                    try await startup.wait()
                    // An agent's sign-in with its API key is on record, refused or not (the key's id, never the key).
                    // `wdn_<id>_<secret>`, ids being letters and digits; anything else may be part of a secret.
                    let parts = request.key.split(separator: "_", omittingEmptySubsequences: false)
                    let keyID =
                        parts.count == 3 && parts[1].count <= 40 && !parts[1].isEmpty
                            && parts[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
                        ? String(parts[1]) : "malformed"
                    let holder: (id: String, agent: String, org: String, user: String, scopes: [String])
                    do {
                        holder = try await apiKeys.check(request.key)
                    } catch let error as ServiceError where error.code == .unauthorized {
                        await audit.publish(
                            AuditEvent(
                                service: .vault, action: "token.refused", outcome: .denied, org: nil, actor: "api-key:\(keyID)",
                                target: "agent token",
                                detail: "the client credentials are not valid"))
                        throw error
                    }
                    // The agent must still exist and be enabled, and the token live no longer than its org allows.
                    let resolved: ResolvedAgent
                    do {
                        resolved = try await client.call(PrincipalEndpoints.resolveAgent, AgentReference(org: holder.org, agent: holder.agent))
                    } catch let error as ServiceError where error.code == .forbidden || error.code == .notFound {
                        await audit.publish(
                            AuditEvent(
                                service: .vault, action: "token.refused", outcome: .denied, org: holder.org, actor: "api-key:\(holder.id)",
                                target: "agent:\(holder.agent)", detail: "the agent or its user is disabled or gone"))
                        throw ServiceError(.unauthorized, "the client credentials are not valid")
                    }
                    let signed = try await keyRing.sign(
                        TokenSigningRequest(
                            issuer: request.issuer, audience: request.audience, agent: holder.agent, org: holder.org, user: holder.user,
                            scopes: holder.scopes, lifetimeSeconds: min(request.lifetimeSeconds, resolved.org.maxTokenLifetime),
                            client: holder.id
                        )
                    )
                    await audit.publish(
                        AuditEvent(
                            service: .vault, action: "token.issued", outcome: .success, org: holder.org, actor: "api-key:\(holder.id)",
                            target: "agent:\(holder.agent)",
                            detail: "an agent token for \(holder.user) (client credentials), expires at \(signed.expiresAt)"))
                    return signed
                },
                ServiceResponder(APIKeyEndpoints.check, bus: runtime.bus, logger: runtime.logger) { request, _ in
                    try await startup.wait()
                    let holder = try await apiKeys.check(request.key)
                    return APIKeyHolder(id: holder.id, agent: holder.agent, org: holder.org, user: holder.user, scopes: holder.scopes)
                },
                ServiceResponder(APIKeyEndpoints.revoke, bus: runtime.bus, logger: runtime.logger) { request, _ in
                    try await startup.wait()
                    try await apiKeys.revoke(request.id)
                    return EmptyBody()
                },
            ]
    }

    /// An org whose secrets requests may name; the platform's own are not reachable this way.
    @Sendable static func servedOrg(_ org: String) throws(ServiceError) -> String {
        guard org != KeyHierarchy.platformOrg else { throw ServiceError(.forbidden, "the platform's own secrets are not served") }
        try SecretPath.validate(org: org)
        return org
    }

    static func refuseOAuthRecord(_ path: String) throws(ServiceError) {
        guard !OAuthPaths.isManaged(path) else {
            throw ServiceError(.badRequest, "'\(path.prefix(128))' is an OAuth connection's record: manage it with warden oauth")
        }
    }

    /// Secret values are for the gateway: a request from any other caller is refused (with NATS
    /// permissions, no other service can even send one, nor receive a gateway's reply).
    static func requireGateway(_ context: WardenServiceKit.RequestContext) throws(ServiceError) {
        guard context.isFrom(.gateway) else { throw ServiceError(.forbidden, "secret values are served to the gateway only") }
    }

    static func cacheSeconds(_ environment: [String: String]) throws(ConfigurationError) -> Int {
        try ServiceConfiguration.number(
            environment, "WARDEN_VAULT_KEY_CACHE_SECONDS", key: "vault.key.cache.seconds", range: 1...3600, unit: "seconds", default: 60)
    }

    /// `WARDEN_VAULT_SHARE_REPLICAS` (default 1): copies of the org key shares NATS keeps; 3 on a
    /// three-node NATS cluster, so that losing a node loses no org's keys.
    static func shareReplicas(_ environment: [String: String]) throws(ConfigurationError) -> Int {
        try ServiceConfiguration.number(environment, "WARDEN_VAULT_SHARE_REPLICAS", key: "vault.share.replicas", range: 1...5, unit: "", default: 1)
    }

    static func status(keys: KeyHierarchy, database: DatabasePool, logger: Logger) async throws -> VaultStatus {
        let provider = try keys.provider
        let rows = try await database.query(
            """
            SELECT org, max(version), count(*), (array_agg(root_key_id ORDER BY version DESC))[1],
                   count(*) FILTER (WHERE root_key_id <> \(provider.keyID)),
                   count(*) FILTER (WHERE NOT bound_to_share AND org <> \(KeyHierarchy.platformOrg))
            FROM org_keys GROUP BY org ORDER BY org
            """, logger: logger)
        var orgs: [VaultStatus.OrgKeyState] = []
        var underOtherRoots = 0, withoutShare = 0
        for try await (org, current, versions, root, other, unbound) in rows.decode((String, Int, Int, String, Int, Int).self) {
            orgs.append(VaultStatus.OrgKeyState(org: org, currentVersion: current, versions: versions, rootKeyID: root))
            underOtherRoots += other
            withoutShare += unbound
        }
        return VaultStatus(
            provider: provider.kind, rootKeyID: provider.keyID, previousRootKeyID: keys.previous?.keyID, orgKeys: orgs,
            orgKeysUnderOtherRoots: underOtherRoots, orgKeysWithoutShare: withoutShare, cachedOrgKeys: keys.cachedKeys,
            cacheSeconds: keys.cacheSeconds)
    }
}
