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

    package var description: String {
        let owner = reference.org == SecretReference.sharedOrg ? "the shared secrets" : "org '\(reference.org)'"
        let hint =
            switch code {
            case .missing:
                " (store it with: warden secret set \(reference.org == SecretReference.sharedOrg ? "--shared" : "--org \(reference.org)") \(reference.path))"
            case .unavailable, .unusable: ""
            }
        return "credential secret://\(reference.path)\(reference.version.map { "#\($0)" } ?? "") of \(owner) cannot be used: \(detail)\(hint)"
    }
}
