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
    let environment: [(name: String, template: CredentialTemplate)]
    let headers: [(name: String, template: CredentialTemplate)]
    let resolver: SecretResolver?
    /// The headers when none refers to a secret (most servers): every request sends these as they are.
    private let fixedHeaders: [String: String]?
    private let injected = Mutex<(values: [String: String], redactor: SecretRedactor)>(([:], .empty))

    /// - Parameter resolver: where references are resolved (nil: values without references only).
    package init(serverID: String, org: String?, environment: [String: String], headers: [String: String], resolver: SecretResolver?) {
        self.serverID = serverID
        self.org = org ?? SecretReference.sharedOrg
        func parsed(_ values: [String: String]) -> [(name: String, template: CredentialTemplate)] {
            // Definitions are validated before they are stored; an unparsable value stays literal.
            values.sorted { $0.key < $1.key }.map { ($0.key, (try? CredentialTemplate(parsing: $0.value)) ?? CredentialTemplate(literal: $0.value)) }
        }
        self.environment = parsed(environment)
        self.headers = parsed(headers)
        self.resolver = resolver
        self.fixedHeaders = self.headers.allSatisfy { $0.template.references.isEmpty } ? headers : nil
    }

    /// Literal values only (tests, servers without references).
    package convenience init(serverID: String, environment: [String: String] = [:], headers: [String: String] = [:]) {
        self.init(serverID: serverID, org: nil, environment: environment, headers: headers, resolver: nil)
    }

    /// The secrets the server's settings name.
    package var references: Set<String> { Set((environment + headers).flatMap { $0.template.references.map(\.path) }) }

    /// Whether a stdio process must restart when `change` happens (it holds its environment).
    package func environmentUses(_ change: SecretChanged) -> Bool {
        change.org == org && environment.contains { entry in entry.template.references.contains { change.path == nil || $0.path == change.path } }
    }

    /// What everything the server sends back is scrubbed of.
    package var redactor: SecretRedactor { injected.withLock { $0.redactor } }

    package func resolvedEnvironment() async throws(CredentialError) -> [String: String] {
        try await resolve(environment, header: false)
    }

    package func resolvedHeaders() async throws(CredentialError) -> [String: String] {
        if let fixedHeaders { return fixedHeaders }
        return try await resolve(headers, header: true)
    }

    private func resolve(_ entries: [(name: String, template: CredentialTemplate)], header: Bool) async throws(CredentialError) -> [String: String] {
        var result: [String: String] = [:]
        for entry in entries {
            var values: [CredentialTemplate.SecretLocator: String] = [:]
            for locator in entry.template.references where values[locator] == nil {
                let reference = SecretReference(org: org, path: locator.path, version: locator.version)
                guard let resolver else {
                    throw CredentialError(reference: reference, .unavailable, "this gateway has no vault to resolve it from")
                }
                let value = try await resolver.value(of: reference)
                if header, value.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) {
                    throw CredentialError(reference: reference, .unusable, "the value holds a line break, which a header cannot")
                }
                values[locator] = value
                remember(value, label: locator.path)
            }
            result[entry.name] = entry.template.render { values[$0] ?? "" }
        }
        return result
    }

    private func remember(_ value: String, label: String) {
        injected.withLock { injected in
            guard injected.values[value] == nil else { return }
            injected.values[value] = label
            injected.redactor = SecretRedactor(secrets: injected.values.map { (label: $0.value, value: $0.key) })
        }
    }
}
