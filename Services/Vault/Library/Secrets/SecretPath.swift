import WardenContracts

/// A secret's address within its org: `github/token`, segments of letters, digits, `.`, `_` and
/// `-` separated by `/`; at most 8 segments and 256 characters.
package enum SecretPath {
    package static func validate(_ path: String) throws(ServiceError) {
        guard !path.isEmpty, path.utf8.count <= 256 else { throw ServiceError(.badRequest, "a secret path must be 1 to 256 characters long") }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count <= 8 else { throw ServiceError(.badRequest, "a secret path has at most 8 segments") }
        for segment in segments {
            guard !segment.isEmpty else {
                throw ServiceError(.badRequest, "secret path '\(path.prefix(64))' has an empty segment (no leading, trailing or double '/')")
            }
            guard segment != ".", segment != ".." else { throw ServiceError(.badRequest, "a secret path may not contain '.' or '..' segments") }
            guard segment.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
                throw ServiceError(
                    .badRequest, "secret path '\(path.prefix(64))' may contain only letters, digits, '.', '_', '-' and '/' between segments")
            }
        }
    }

    /// An org as secrets name it: what the admin API names it (or the platform's own).
    package static func validate(org: String) throws(ServiceError) {
        if org == KeyHierarchy.platformOrg || org == SecretReference.sharedOrg { return }
        guard !org.isEmpty, org.utf8.count <= 64, org.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
            throw ServiceError(.badRequest, "'\(org.prefix(64))' is not an org name")
        }
    }

    private static let allowed: Set<Unicode.Scalar> = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".unicodeScalars)
}
