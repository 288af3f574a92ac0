import WardenContracts

/// A connection's name: one path segment (it names secrets `oauth/<name>/…`).
package enum OAuthConnectionName {
    package static func validate(_ name: String) throws(ServiceError) {
        guard OAuthPaths.isValidName(name) else {
            throw ServiceError(.badRequest, "'\(name.prefix(64))' is not a connection name (1 to 64 letters, digits, '.', '_' or '-')")
        }
        // Names starting with '_' are Warden's own records (the org's sign-in provider).
        guard !name.hasPrefix("_") else { throw ServiceError(.badRequest, "connection names may not start with '_' (reserved)") }
    }
}
