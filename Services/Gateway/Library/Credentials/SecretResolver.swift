import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenNATS
import WardenServiceKit

/// Fetches secret values from the vault when a server needs them (a stdio process starts, an HTTP
/// request goes out) and keeps them in this process's memory only, for `lifetime` (default 60 s,
/// `WARDEN_CREDENTIAL_CACHE_SECONDS`). A change announced by the vault drops the cached value at
/// once, on every replica, and is passed on to `onChange` (the registry restarts the stdio servers
/// that use it). Every value resolved is added to the log redaction.
package final class SecretResolver: Service, Sendable {
    struct Entry {
        var value: String
        var expires: ContinuousClock.Instant
    }

    let client: ServiceClient
    let bus: (any MessageBus)?
    let lifetime: Duration
    let logger: Logger
    /// Cached values, and a count of announced changes: a read that began before a change does not
    /// cache what it got.
    private let cache = Mutex<(entries: [SecretReference: Entry], tokens: [SecretReference: Entry], generation: Int)>(([:], [:], 0))
    private let listeners = Mutex<[@Sendable (SecretChanged) -> Void]>([])
    /// A burst of calls needing a token that is due asks the vault once.
    private let tokenRequests = SingleFlight<OAuthGrantReference, OAuthAccessToken>()

    package init(client: ServiceClient, bus: (any MessageBus)?, lifetime: Duration = .seconds(60), logger: Logger) {
        self.client = client
        self.bus = bus
        self.lifetime = lifetime
        self.logger = logger
    }

    /// `WARDEN_CREDENTIAL_CACHE_SECONDS`: 0 to 3600 (0: every use asks the vault).
    package static func lifetime(_ environment: [String: String]) throws(ConfigurationError) -> Duration {
        .seconds(
            try ServiceConfiguration.number(
                environment, "WARDEN_CREDENTIAL_CACHE_SECONDS", key: "credential.cache.seconds", range: 0...3600, unit: "seconds", default: 60))
    }

    /// Called with every change the vault announces, after the cache dropped it.
    package func onChange(_ listener: @escaping @Sendable (SecretChanged) -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    /// The value of `reference`: from the cache while it is fresh, else from the vault.
    package func value(of reference: SecretReference) async throws(CredentialError) -> String {
        let now = ContinuousClock.now
        let (cached, generation) = cache.withLock { ($0.entries[reference], $0.generation) }
        if let cached, cached.expires > now { return cached.value }
        let secret: SecretValue
        do {
            secret = try await client.call(SecretEndpoints.read, reference)
        } catch {
            throw CredentialError(reference: reference, error.code == .notFound ? .missing : .unavailable, error.message)
        }
        guard let bytes = Data(base64Encoded: secret.value), let value = String(bytes: bytes, encoding: .utf8) else {
            throw CredentialError(reference: reference, .unusable, "the value is not text")
        }
        LogRedaction.add([(label: reference.path, value: value)])
        if lifetime > .zero {
            cache.withLock { cache in
                if cache.generation == generation { cache.entries[reference] = Entry(value: value, expires: now + lifetime) }
            }
        }
        return value
    }

    /// The current access token of an OAuth connection: cached until the vault says to ask again
    /// (shortly before it expires; the vault then refreshes it, once for every replica).
    package func accessToken(of connection: OAuthGrantReference) async throws(CredentialError) -> String {
        let key = SecretReference(org: connection.org, path: OAuthPaths.grant(connection.name, user: connection.user))
        let now = ContinuousClock.now
        let (cached, generation) = cache.withLock { ($0.tokens[key], $0.generation) }
        if let cached, cached.expires > now { return cached.value }
        let token: OAuthAccessToken
        do {
            token = try await tokenRequests.run(connection) { try await client.call(OAuthEndpoints.token, connection, timeout: .seconds(20)) }
        } catch let error as ServiceError {
            throw CredentialError(connection: connection, error.code == .notFound ? .missing : .unavailable, error.message)
        } catch {
            throw CredentialError(connection: connection, .unavailable, "the vault's answer could not be read")
        }
        // Labelled per grant: the newest few of each are kept, whoever else connects.
        let label = "oauth://\(connection.name)" + (connection.user.map { " of \($0)" } ?? "")
        LogRedaction.add([(label: label, value: token.accessToken)], keepingPerLabel: ServerCredentials.tokensKept)
        let untilRefresh = Duration.milliseconds(Int64(max(0, token.refreshAt.timeIntervalSinceNow) * 1000))
        let keep = min(lifetime, untilRefresh)
        if keep > .zero {
            cache.withLock { cache in
                if cache.generation == generation { cache.tokens[key] = Entry(value: token.accessToken, expires: now + keep) }
            }
        }
        return token.accessToken
    }

    /// Drops what a change makes stale and tells the listeners.
    package func changed(_ change: SecretChanged) {
        cache.withLock { cache in
            cache.generation += 1
            let stale = { (key: SecretReference) in key.org == change.org && (change.path == nil || change.path == key.path) }
            cache.entries = cache.entries.filter { key, _ in !stale(key) }
            cache.tokens = cache.tokens.filter { key, _ in !stale(key) }
        }
        for listener in listeners.withLock({ $0 }) { listener(change) }
    }

    /// Listens for the vault's announcements until graceful shutdown.
    package func run() async throws {
        guard let bus else { return try await gracefulShutdown() }
        let changes = try bus.subscribe(SecretEndpoints.changedSubject, queue: nil)
        await withGracefulShutdownHandler {
            for await message in changes {
                guard let change = try? EnvelopeCoding.decoder().decode(SecretChanged.self, from: message.payload) else {
                    logger.warning("ignoring a malformed secret change announcement")
                    continue
                }
                changed(change)
            }
        } onGracefulShutdown: {
            changes.unsubscribe()
        }
    }
}
