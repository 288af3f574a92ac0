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
    package var code: Code
    package var detail: String

    init(reference: SecretReference, _ code: Code, _ detail: String) {
        self.reference = reference
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
        let owner = reference.org == SecretReference.sharedOrg ? "the shared secrets" : "org '\(reference.org)'"
        let hint =
            switch code {
            case .missing:
                " (store it with: warden secret set \(Self.address(of: reference)))"
            case .unavailable, .unusable: ""
            }
        return "credential secret://\(reference.path)\(reference.version.map { "#\($0)" } ?? "") of \(owner) cannot be used: \(detail)\(hint)"
    }
}
