import WardenContracts

/// Why a credential a server needs could not be injected. Names the secret, never a value.
package struct CredentialError: Error, Sendable, CustomStringConvertible {
    package enum Code: String, Sendable {
        /// No such secret (or version), or it was deleted, destroyed or expired: configure it.
        case missing
        /// The vault did not answer; the call may succeed later.
        case unavailable
        /// The value cannot be used where it goes (not text; a line break in a header).
        case unusable
    }

    package var reference: SecretReference
    /// Set when the credential is an OAuth connection's access token.
    package var connection: OAuthGrantReference?
    package var code: Code
    package var detail: String

    init(reference: SecretReference, _ code: Code, _ detail: String) {
        self.reference = reference
        self.code = code
        self.detail = detail
    }

    init(connection: OAuthGrantReference, _ code: Code, _ detail: String) {
        self.reference = SecretReference(org: connection.org, path: OAuthPaths.grant(connection.name, user: connection.user))
        self.connection = connection
        self.code = code
        self.detail = detail
    }

    /// `warden secret set`'s arguments for a reference: a user's own secret by `--user`.
    static func address(of reference: SecretReference) -> String {
        if reference.org == SecretReference.sharedOrg { return "--shared \(reference.path)" }
        let parts = reference.path.split(separator: "/", maxSplits: 2).map(String.init)
        if parts.count == 3, parts[0] == "users" { return "--org \(reference.org) --user \(parts[1]) \(parts[2])" }
        return "--org \(reference.org) \(reference.path)"
    }

    package var description: String {
        if let connection { return Self.describe(connection, code, detail) }
        let owner = reference.org == SecretReference.sharedOrg ? "the shared secrets" : "org '\(reference.org)'"
        let hint =
            switch code {
            case .missing:
                " (store it with: warden secret set \(Self.address(of: reference)))"
            case .unavailable, .unusable: ""
            }
        return "credential secret://\(reference.path)\(reference.version.map { "#\($0)" } ?? "") of \(owner) cannot be used: \(detail)\(hint)"
    }

    static func describe(_ connection: OAuthGrantReference, _ code: Code, _ detail: String) -> String {
        let owner = connection.org == SecretReference.sharedOrg ? "--shared" : "--org \(connection.org)"
        let hint =
            switch code {
            case .missing: " (connect it with: warden oauth connect \(connection.name) \(owner)\(connection.user.map { " --user \($0)" } ?? ""))"
            case .unavailable, .unusable: ""
            }
        return "credential oauth://\(connection.name) cannot be used: \(detail)\(hint)"
    }
}
