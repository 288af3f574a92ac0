import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// OAuth connections to downstream SaaS. The client (`oauth/<name>/client`) and each grant
/// (`[users/<user>/]oauth/<name>/grant`) are secrets of the org, so rotation, re-encryption and
/// shredding cover them; a flow in progress waits in `oauth_flows` with its PKCE verifier sealed.
///
/// Access tokens are refreshed when asked for in the last third of their life, once across every
/// vault replica: one request per grant at a time in each replica (`SingleFlight`), and one replica
/// at a time per grant (`OAuthRefreshLease`); the others poll until the new token is stored. A
/// refresh only stores its result if the grant did not change meanwhile (a connect or disconnect
/// wins), and a rotated refresh token is stored before the lease is let go. A refresh the provider
/// refuses with `invalid_grant` marks the grant failed (an audit event says so) and every later
/// request gets a clear error until someone connects again; other refusals and silence keep the
/// grant, serving the current token while it is valid.
package final class OAuthConnections: Sendable {
    /// How long a sign-in link may be used.
    static let flowLifetime: TimeInterval = 600
    static let refreshActor = "vault:oauth-refresh"
    /// How long a token request waits for another replica's refresh.
    static let refreshWait = Duration.seconds(15)

    let records: OAuthRecordStore
    let secrets: SecretStore
    let keys: KeyHierarchy
    let database: DatabasePool
    let endpoint: OAuthTokenEndpoint
    let lease: OAuthRefreshLease
    let allowsLoopbackHTTP: Bool
    let announce: @Sendable (String, String) -> Void
    let audit: @Sendable (AuditEvent) async -> Void
    let logger: Logger
    private let refreshes = SingleFlight<String, OAuthAccessToken>()

    package init(
        secrets: SecretStore, keys: KeyHierarchy, database: DatabasePool, endpoint: OAuthTokenEndpoint = OAuthTokenEndpoint(),
        allowsLoopbackHTTP: Bool = false, announce: @escaping @Sendable (String, String) -> Void,
        audit: @escaping @Sendable (AuditEvent) async -> Void, logger: Logger
    ) {
        self.records = OAuthRecordStore(secrets: secrets)
        self.secrets = secrets
        self.keys = keys
        self.database = database
        self.endpoint = endpoint
        self.lease = OAuthRefreshLease(database: database, logger: logger)
        self.allowsLoopbackHTTP = allowsLoopbackHTTP
        self.announce = announce
        self.audit = audit
        self.logger = logger
    }

    /// `WARDEN_OAUTH_ALLOW_LOOPBACK_HTTP=true`: providers at plain-http loopback addresses are
    /// accepted (tests; never in production).
    package static func allowsLoopbackHTTP(_ environment: [String: String]) -> Bool {
        ["true", "1", "yes"].contains(environment["WARDEN_OAUTH_ALLOW_LOOPBACK_HTTP"]?.lowercased() ?? "")
    }

    package static let migration = Migration(
        version: 6,
        name: "oauth_connections",
        statements: [
            """
            CREATE TABLE oauth_flows (
                state_hash bytea PRIMARY KEY,
                org text NOT NULL,
                name text NOT NULL,
                subject text,
                redirect_uri text NOT NULL,
                verifier bytea NOT NULL,
                wrapped_data_key bytea NOT NULL,
                org_key_version int NOT NULL,
                created_by text NOT NULL,
                expires_at timestamptz NOT NULL
            )
            """,
            """
            CREATE TABLE oauth_refresh_leases (
                org text NOT NULL,
                path text NOT NULL,
                holder text NOT NULL,
                expires_at timestamptz NOT NULL,
                PRIMARY KEY (org, path)
            )
            """,
        ]
    )

    // MARK: Clients

    package func setClient(_ settings: OAuthClientSettings) async throws -> OAuthClientView {
        let settings = try OAuthClientRecord.validated(settings, allowsLoopbackHTTP: allowsLoopbackHTTP)
        var record = OAuthClientRecord(
            clientID: settings.clientID, clientSecret: settings.clientSecret, authorizeURL: settings.authorizeURL, tokenURL: settings.tokenURL,
            scopes: settings.scopes)
        if record.clientSecret == nil {
            do {
                record.clientSecret = try await records.client(org: settings.org, name: settings.name).clientSecret
            } catch let error as ServiceError where error.code == .notFound {
                // A new public client.
            }
        }
        let metadata = try await records.store(record, org: settings.org, path: OAuthPaths.client(settings.name), actor: settings.actor)
        logger.info(
            "oauth client stored", metadata: ["org": "\(settings.org)", "oauth.connection": "\(settings.name)", "actor": "\(settings.actor)"])
        return Self.view(record, org: settings.org, name: settings.name, metadata: metadata)
    }

    package func listClients(_ request: OAuthClientListRequest) async throws -> OAuthClientList {
        let listing = try await secrets.list(SecretListRequest(org: request.org, prefix: "oauth/"))
        var clients: [OAuthClientView] = []
        for metadata in listing.secrets {
            let segments = metadata.path.split(separator: "/")
            guard segments.count == 3, segments[2] == "client" else { continue }
            // A destroyed client is listed no more.
            guard let record = try? await records.client(org: request.org, name: String(segments[1])) else { continue }
            clients.append(Self.view(record, org: request.org, name: String(segments[1]), metadata: metadata))
        }
        return OAuthClientList(clients: clients)
    }

    /// Erases the client (its secret is gone); grants made with it stop refreshing.
    package func deleteClient(_ reference: OAuthGrantReference) async throws -> OAuthClientView {
        try OAuthConnectionName.validate(reference.name)
        let record = try await records.client(org: reference.org, name: reference.name)
        let metadata = try await secrets.destroy(
            SecretDestruction(org: reference.org, path: OAuthPaths.client(reference.name), actor: reference.actor ?? "unknown"))
        return Self.view(record, org: reference.org, name: reference.name, metadata: metadata)
    }

    static func view(_ record: OAuthClientRecord, org: String, name: String, metadata: SecretMetadata) -> OAuthClientView {
        OAuthClientView(
            org: org, name: name, clientID: record.clientID, hasClientSecret: record.clientSecret != nil, authorizeURL: record.authorizeURL,
            tokenURL: record.tokenURL, scopes: record.scopes, updatedAt: metadata.updatedAt, updatedBy: metadata.updatedBy)
    }

    // MARK: The authorization-code flow

    /// A sign-in link with a fresh state and PKCE challenge (S256); the flow waits for its callback.
    package func connect(_ request: OAuthConnectRequest) async throws -> OAuthAuthorization {
        try OAuthConnectionName.validate(request.name)
        if let user = request.user { try SecretPath.validate("users/\(user)") }
        let client = try await records.client(org: request.org, name: request.name)
        let state = Self.randomToken(), verifier = Self.randomToken()
        let orgKey = try await keys.currentKey(of: request.org)
        let stateHash = Array(SHA256.hash(data: Data(state.utf8)))
        let sealed = try Envelope.seal(Array(verifier.utf8), under: orgKey, context: Self.flowContext(org: request.org, stateHash: stateHash))
        let expiresAt = Date().addingTimeInterval(Self.flowLifetime)
        try await database.query("DELETE FROM oauth_flows WHERE expires_at < now() - interval '1 hour'", logger: logger)
        try await database.query(
            """
            INSERT INTO oauth_flows (state_hash, org, name, subject, redirect_uri, verifier, wrapped_data_key, org_key_version, created_by, expires_at)
            VALUES (\(ByteBuffer(bytes: stateHash)), \(request.org), \(request.name), \(request.user), \(request.redirectURI),
                    \(ByteBuffer(bytes: sealed.ciphertext)), \(ByteBuffer(bytes: sealed.wrappedDataKey)), \(sealed.orgKeyVersion), \(request.actor), \(expiresAt))
            """, logger: logger)
        var query = [
            ("response_type", "code"), ("client_id", client.clientID), ("redirect_uri", request.redirectURI), ("state", state),
            ("code_challenge", Base64URL.encode(Array(SHA256.hash(data: Data(verifier.utf8))))), ("code_challenge_method", "S256"),
        ]
        if !client.scopes.isEmpty { query.append(("scope", client.scopes.joined(separator: " "))) }
        let separator = client.authorizeURL.contains("?") ? "&" : "?"
        let url = client.authorizeURL + separator + query.map { "\($0.0)=\(OAuthTokenEndpoint.formEncode($0.1))" }.joined(separator: "&")
        logger.info(
            "oauth connection started",
            metadata: ["org": "\(request.org)", "oauth.connection": "\(request.name)", "user": "\(request.user ?? "-")", "actor": "\(request.actor)"])
        return OAuthAuthorization(url: url, expiresAt: expiresAt)
    }

    /// The provider's redirect: the flow it names is used up (once), its code exchanged, the grant stored.
    package func complete(_ callback: OAuthCallback) async throws -> OAuthConnectionStatus {
        let stateHash = Array(SHA256.hash(data: Data(callback.state.utf8)))
        let rows = try await database.query(
            """
            DELETE FROM oauth_flows WHERE state_hash = \(ByteBuffer(bytes: stateHash))
            RETURNING org, name, subject, redirect_uri, verifier, wrapped_data_key, org_key_version, created_by, expires_at
            """, logger: logger)
        guard
            let row = try await rows.decode((String, String, String?, String, ByteBuffer, ByteBuffer, Int, String, Date).self).collected().first
        else {
            throw ServiceError(.notFound, "this sign-in link is unknown or was used already: start again with warden oauth connect")
        }
        let (org, name, user, redirectURI, verifier, wrappedKey, orgKeyVersion, actor, expiresAt) = row
        let target = Self.target(name: name, user: user)
        guard expiresAt > Date() else { throw ServiceError(.conflict, "this sign-in link expired: start again with warden oauth connect \(name)") }
        if let error = callback.error {
            let description = callback.errorDescription.map { ": \(OAuthTokenEndpoint.printable($0, 200))" } ?? ""
            throw ServiceError(.forbidden, "the provider did not authorize \(target) (\(OAuthTokenEndpoint.printable(error, 64))\(description))")
        }
        guard let code = callback.code, !code.isEmpty else { throw ServiceError(.badRequest, "the provider's redirect carries no code") }
        let envelope = Envelope(
            ciphertext: Array(verifier.readableBytesView), wrappedDataKey: Array(wrappedKey.readableBytesView), orgKeyVersion: orgKeyVersion)
        let orgKey = try await keys.key(of: org, version: orgKeyVersion)
        let opened = try envelope.open(with: orgKey, context: Self.flowContext(org: org, stateHash: stateHash), record: "oauth flow of \(target)")
        let client = try await records.client(org: org, name: name)
        let tokens: OAuthTokenResponse
        do {
            tokens = try await endpoint.exchange(
                code: code, verifier: String(decoding: opened, as: UTF8.self), redirectURI: redirectURI, client: client)
        } catch {
            throw Self.serviceError(error, target: target, redacting: [client.clientSecret, code, String(decoding: opened, as: UTF8.self)])
        }
        let grant = OAuthGrantRecord(tokens, at: Date())
        let path = OAuthPaths.grant(name, user: user)
        try await records.store(grant, org: org, path: path, actor: actor)
        announce(org, path)
        logger.notice(
            "oauth connection made", metadata: ["org": "\(org)", "oauth.connection": "\(name)", "user": "\(user ?? "-")", "actor": "\(actor)"])
        await audit(
            AuditEvent(
                service: .vault, action: "oauth.connected", outcome: .success, org: org, actor: actor, target: target,
                detail: grant.refreshToken == nil ? "connected; the provider gave no refresh token" : "connected"))
        return Self.status(grant, org: org, name: name, user: user)
    }

    package func status(_ reference: OAuthGrantReference) async throws -> OAuthConnectionStatus {
        try OAuthConnectionName.validate(reference.name)
        guard let grant = try await records.grant(org: reference.org, path: OAuthPaths.grant(reference.name, user: reference.user)) else {
            return OAuthConnectionStatus(
                org: reference.org, name: reference.name, user: reference.user, connected: false, expiresAt: nil, obtainedAt: nil, failure: nil)
        }
        return Self.status(grant.record, org: reference.org, name: reference.name, user: reference.user)
    }

    /// Replaces the grant with a disconnected record (a refresh running meanwhile then stores
    /// nothing) and erases every version before it: requests fail until someone connects again.
    package func disconnect(_ reference: OAuthGrantReference) async throws -> OAuthConnectionStatus {
        try OAuthConnectionName.validate(reference.name)
        let path = OAuthPaths.grant(reference.name, user: reference.user)
        let actor = reference.actor ?? "unknown"
        let metadata = try await records.store(OAuthGrantRecord(disconnectedBy: actor, at: Date()), org: reference.org, path: path, actor: actor)
        if metadata.currentVersion > 1 {
            _ = try await secrets.destroy(
                SecretDestruction(org: reference.org, path: path, versions: Array(1..<metadata.currentVersion), actor: actor))
        }
        announce(reference.org, path)
        await audit(
            AuditEvent(
                service: .vault, action: "oauth.disconnected", outcome: .success, org: reference.org, actor: actor,
                target: Self.target(name: reference.name, user: reference.user), detail: "disconnected"))
        return OAuthConnectionStatus(
            org: reference.org, name: reference.name, user: reference.user, connected: false, expiresAt: nil, obtainedAt: nil, failure: nil)
    }

    static func status(_ grant: OAuthGrantRecord, org: String, name: String, user: String?) -> OAuthConnectionStatus {
        OAuthConnectionStatus(
            org: org, name: name, user: user, connected: grant.failure == nil, expiresAt: grant.expiresAt, obtainedAt: grant.obtainedAt,
            failure: grant.failure)
    }

    // MARK: Access tokens

    /// The current access token; refreshed first (once across replicas) when it is due.
    package func token(_ reference: OAuthGrantReference) async throws -> OAuthAccessToken {
        try OAuthConnectionName.validate(reference.name)
        let path = OAuthPaths.grant(reference.name, user: reference.user)
        if let token = try await usable(reference, path: path) { return token }
        return try await refreshes.run("\(reference.org)\u{0}\(path)") {
            let deadline = ContinuousClock.now + Self.refreshWait
            while true {
                if let token = try await usable(reference, path: path) { return token }
                if let holder = try await lease.acquire(org: reference.org, path: path) {
                    do {
                        let token = try await refresh(reference, path: path)
                        await lease.release(org: reference.org, path: path, holder: holder)
                        return token
                    } catch {
                        await lease.release(org: reference.org, path: path, holder: holder)
                        throw error
                    }
                }
                // Another replica refreshes it: its result is stored before its lease goes.
                guard ContinuousClock.now < deadline else {
                    throw ServiceError(
                        .unavailable, "\(Self.target(name: reference.name, user: reference.user)) is being refreshed by another vault; try again")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// The grant's token if it needs no refresh; an error if it cannot be used at all; nil when due.
    private func usable(_ reference: OAuthGrantReference, path: String) async throws -> OAuthAccessToken? {
        let target = Self.target(name: reference.name, user: reference.user)
        guard let grant = try await records.grant(org: reference.org, path: path)?.record else {
            throw ServiceError(.notFound, "\(target) of org '\(reference.org)' is not connected")
        }
        if let failure = grant.failure { throw ServiceError(.notFound, "\(target) must be connected again: \(failure)") }
        return grant.usableToken(at: Date())
    }

    /// Refreshes the grant, holding its lease.
    private func refresh(_ reference: OAuthGrantReference, path: String) async throws -> OAuthAccessToken {
        let target = Self.target(name: reference.name, user: reference.user)
        guard let (grant, version) = try await records.grant(org: reference.org, path: path) else {
            throw ServiceError(.notFound, "\(target) of org '\(reference.org)' is not connected")
        }
        let now = Date()
        if let failure = grant.failure { throw ServiceError(.notFound, "\(target) must be connected again: \(failure)") }
        if let token = grant.usableToken(at: now) { return token }  // refreshed while this replica waited
        guard let refreshToken = grant.refreshToken else {
            if let expiresAt = grant.expiresAt, expiresAt > now.addingTimeInterval(1) {
                return OAuthAccessToken(accessToken: grant.accessToken, expiresAt: expiresAt, refreshAt: expiresAt)
            }
            throw ServiceError(.notFound, "\(target) must be connected again: its access token expired and the provider gave no refresh token")
        }
        let client = try await records.client(org: reference.org, name: reference.name)
        let tokens: OAuthTokenResponse
        do {
            tokens = try await endpoint.refresh(refreshToken, client: client)
        } catch .refused(let error, let description) where error == "invalid_grant" {
            let reason =
                "the provider refused its refresh token (\(error)\(description.map { ": \(Self.redact($0, [client.clientSecret, refreshToken]))" } ?? ""))"
            var failed = grant
            failed.refreshToken = nil
            failed.failure = reason
            if try await records.replace(failed, org: reference.org, path: path, version: version, actor: Self.refreshActor) {
                announce(reference.org, path)
                logger.warning(
                    "oauth refresh refused; the connection must be made again",
                    metadata: ["org": "\(reference.org)", "oauth.connection": "\(reference.name)", "user": "\(reference.user ?? "-")"])
                await audit(
                    AuditEvent(
                        service: .vault, action: "oauth.refresh_failed", outcome: .failure, org: reference.org, actor: Self.refreshActor,
                        target: target, detail: reason))
            }
            throw ServiceError(.notFound, "\(target) must be connected again: \(reason)")
        } catch {
            // Silence, or a refusal that does not condemn the grant (the client's credentials, a
            // rate limit): the current token is served while it holds; the grant stays.
            let detail: String =
                switch error {
                case .refused(let code, let description):
                    "it refused (\(code)\(description.map { ": \(Self.redact($0, [client.clientSecret, refreshToken]))" } ?? ""))"
                case .unreachable(let detail): detail
                }
            logger.warning(
                "oauth refresh failed", metadata: ["org": "\(reference.org)", "oauth.connection": "\(reference.name)", "error": "\(detail)"])
            if let expiresAt = grant.expiresAt, expiresAt > now.addingTimeInterval(1) {
                // Asked again in a few seconds (or at expiry): the refresh is tried again then.
                return OAuthAccessToken(
                    accessToken: grant.accessToken, expiresAt: expiresAt, refreshAt: min(expiresAt.addingTimeInterval(-1), now.addingTimeInterval(5)))
            }
            throw ServiceError(.unavailable, "the OAuth provider of \(target) did not refresh its token: \(detail)")
        }
        let fresh = OAuthGrantRecord(tokens, keeping: refreshToken, at: now)
        guard try await records.replace(fresh, org: reference.org, path: path, version: version, actor: Self.refreshActor) else {
            // A connect or disconnect came first: what it stored stands.
            if let token = try await usable(reference, path: path) { return token }
            throw ServiceError(.notFound, "\(target) of org '\(reference.org)' changed while it was refreshed; try again")
        }
        announce(reference.org, path)
        logger.info(
            "oauth access token refreshed",
            metadata: ["org": "\(reference.org)", "oauth.connection": "\(reference.name)", "user": "\(reference.user ?? "-")"])
        do {
            try await secrets.prune(org: reference.org, path: path, keeping: 2)
        } catch {
            logger.warning(
                "cannot prune old versions of an oauth grant", metadata: ["org": "\(reference.org)", "error": "\(String(reflecting: error))"])
        }
        return OAuthAccessToken(accessToken: fresh.accessToken, expiresAt: fresh.expiresAt, refreshAt: fresh.refreshAt)
    }

    // MARK: Helpers

    static func target(name: String, user: String?) -> String { "OAuth connection '\(name)'\(user.map { " of user '\($0)'" } ?? "")" }

    static func flowContext(org: String, stateHash: [UInt8]) -> [UInt8] { Array("oauth-flow\u{0}\(org)\u{0}".utf8) + stateHash }

    static func randomToken() -> String { Base64URL.encode(Array(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })) }

    /// A provider's words, without the values it was sent.
    static func redact(_ text: String, _ values: [String?]) -> String {
        values.compactMap { $0 }.filter { $0.count >= 4 }.reduce(text) { $0.replacingOccurrences(of: $1, with: "[redacted]") }
    }

    static func serviceError(_ error: OAuthProviderError, target: String, redacting values: [String?]) -> ServiceError {
        switch error {
        case .refused(let code, let description):
            ServiceError(.forbidden, "the provider refused to connect \(target) (\(code)\(description.map { ": \(redact($0, values))" } ?? ""))")
        case .unreachable(let detail): ServiceError(.unavailable, "the provider of \(target) could not be reached: \(detail)")
        }
    }
}
