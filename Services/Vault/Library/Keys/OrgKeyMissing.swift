/// A record names an org key version that no longer exists (rotated away meanwhile, or shredded).
package struct OrgKeyMissing: Error, CustomStringConvertible {
    package var org: String
    package var version: Int
    package var description: String { "org '\(org)' has no key version \(version)" }
}
