import Synchronization
import WardenContracts
import WardenServiceKit

/// The credentials of one server: its `env` and `headers` values as templates, resolved through the
/// vault when they are used (`SecretResolver`), and what it was given, for the leak guard.
///
/// Secrets of a server of an org are that org's; those of a shared server are the shared secrets
/// (`SecretReference.sharedOrg`). Every value injected into any instance of the server stays in its
/// redactor for the life of the gateway: a process started before a rotation still knows the old
/// value, and scrubbing a value too many is harmless.
package final class ServerCredentials: Sendable {
    package let serverID: String
    /// The org whose secrets the server's references name.
    package let org: String
    /// For an instance of a per-user server: whose secrets (`users/<user>/<path>`) it is given.
    package let user: String?
    let environment: [(name: String, template: CredentialTemplate)]
    let headers: [(name: String, template: CredentialTemplate)]
    /// An HTTP server's URL when its query refers to secrets (nil: the URL is used as it is).
    let url: CredentialURL?
    let resolver: SecretResolver?
    /// The headers when none refers to a secret (most servers): every request sends these as they are.
    private let fixedHeaders: [String: String]?
    /// What the server was given, and the redactor for it with its generation (bumped on every new
    /// value, so that a stream's leak guard notices).
    private let injected = Mutex(Injected())

    private struct Injected {
        /// Value → label, and the values in the order they were given.
        var values: [String: String] = [:]
        var order: [String] = []
        var changes = 0
        var redactor = SecretRedactor.empty
        /// The change the redactor knows (builds may finish out of order).
        var generation = 0
    }

    /// How many access tokens of one OAuth connection the guard keeps looking for: the current one
    /// and those before it that calls still in flight may have been given.
    static let tokensKept = 3

    /// - Parameter resolver: where references are resolved (nil: values without references only).
    package init(
        serverID: String, org: String?, user: String? = nil, environment: [String: String], headers: [String: String], url: String? = nil,
        resolver: SecretResolver?
    ) {
        self.serverID = serverID
        self.org = org ?? SecretReference.sharedOrg
        self.user = user
        func parsed(_ values: [String: String]) -> [(name: String, template: CredentialTemplate)] {
            // Definitions are validated before they are stored; an unparsable value stays literal.
            values.sorted { $0.key < $1.key }.map { ($0.key, (try? CredentialTemplate(parsing: $0.value)) ?? CredentialTemplate(literal: $0.value)) }
        }
        self.environment = parsed(environment)
        self.headers = parsed(headers)
        self.url = url.flatMap { try? CredentialURL(parsing: $0) }.flatMap { $0.references.isEmpty ? nil : $0 }
        self.resolver = resolver
        self.fixedHeaders = self.headers.allSatisfy { $0.template.references.isEmpty } ? headers : nil
    }

    /// Literal values only (tests, servers without references).
    package convenience init(serverID: String, environment: [String: String] = [:], headers: [String: String] = [:]) {
        self.init(serverID: serverID, org: nil, environment: environment, headers: headers, resolver: nil)
    }

    /// The vault path a reference names: the user's own secret for a per-user instance.
    func vaultPath(_ locator: CredentialTemplate.SecretLocator) -> String {
        switch locator.kind {
        case .secret: user.map { "users/\($0)/\(locator.path)" } ?? locator.path
        case .oauth: OAuthPaths.grant(locator.path, user: user)
        }
    }

    /// Whether `change` concerns a secret these settings refer to (only `environment` when
    /// `environmentOnly`), so that the instances given it must stop. OAuth tokens do not count:
    /// they go in headers, rendered anew for every request, and change at every refresh.
    package func uses(_ change: SecretChanged, environmentOnly: Bool = true) -> Bool {
        guard change.org == org else { return false }
        let references =
            environmentOnly
            ? environment.flatMap(\.template.references) : (environment + headers).flatMap(\.template.references) + (url?.references ?? [])
        return references.contains { $0.kind == .secret && (change.path == nil || vaultPath($0) == change.path) }
    }

    /// Every secret these settings need, resolved now (through the cache): a missing one is named.
    package func check() async throws(CredentialError) {
        _ = try await resolve(environment, header: false)
        _ = try await resolve(headers, header: true)
        _ = try await resolvedURL()
    }

    /// What everything the server sends back is scrubbed of, and its generation.
    package var redactor: (redactor: SecretRedactor, generation: Int) { injected.withLock { ($0.redactor, $0.generation) } }

    package func resolvedEnvironment() async throws(CredentialError) -> [String: String] {
        try await resolve(environment, header: false)
    }

    package func resolvedHeaders() async throws(CredentialError) -> [String: String] {
        if let fixedHeaders { return fixedHeaders }
        return try await resolve(headers, header: true)
    }

    /// The URL with the secrets its query refers to, percent-encoded; nil when it refers to none.
    package func resolvedURL() async throws(CredentialError) -> String? {
        guard let url else { return nil }
        let values = try await values(of: url.references, header: false)
        return url.render { values[$0] ?? "" }
    }

    private func resolve(_ entries: [(name: String, template: CredentialTemplate)], header: Bool) async throws(CredentialError) -> [String: String] {
        var result: [String: String] = [:]
        for entry in entries {
            let values = try await values(of: entry.template.references, header: header)
            result[entry.name] = entry.template.render { values[$0] ?? "" }
        }
        return result
    }

    /// The values of `references`, through the resolver's cache; each is remembered by the leak guard.
    private func values(of references: [CredentialTemplate.SecretLocator], header: Bool) async throws(CredentialError) -> [CredentialTemplate
        .SecretLocator: String]
    {
        var values: [CredentialTemplate.SecretLocator: String] = [:]
        for locator in references where values[locator] == nil {
            let reference = SecretReference(org: org, path: vaultPath(locator), version: locator.version)
            let connection = OAuthGrantReference(org: org, name: locator.path, user: user)
            func failure(_ code: CredentialError.Code, _ detail: String) -> CredentialError {
                locator.kind == .oauth
                    ? CredentialError(connection: connection, code, detail) : CredentialError(reference: reference, code, detail)
            }
            guard let resolver else { throw failure(.unavailable, "this gateway has no vault to resolve it from") }
            let value =
                switch locator.kind {
                case .secret: try await resolver.value(of: reference)
                case .oauth: try await resolver.accessToken(of: connection)
                }
            if header, value.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) {
                throw failure(.unusable, "the value holds a line break, which a header cannot")
            }
            values[locator] = value
            remember(value, label: locator.kind == .oauth ? locator.description : reference.path, replaced: locator.kind == .oauth)
        }
        return values
    }

    /// Adds a value to the redactor (for an OAuth token, dropping all but the newest few of its
    /// connection); it is built outside the lock, and a build never replaces a newer one.
    private func remember(_ value: String, label: String, replaced: Bool) {
        let change = injected.withLock { injected -> (values: [String: String], number: Int)? in
            guard injected.values[value] == nil else { return nil }
            injected.values[value] = label
            injected.order.append(value)
            if replaced {
                for old in injected.order.filter({ injected.values[$0] == label }).dropLast(Self.tokensKept) { injected.values[old] = nil }
                injected.order.removeAll { injected.values[$0] == nil }
            }
            injected.changes += 1
            return (injected.values, injected.changes)
        }
        guard let change else { return }
        let redactor = SecretRedactor(secrets: change.values.map { (label: $0.value, value: $0.key) })
        injected.withLock { injected in
            guard change.number > injected.generation else { return }
            injected.redactor = redactor
            injected.generation = change.number
        }
    }
}
