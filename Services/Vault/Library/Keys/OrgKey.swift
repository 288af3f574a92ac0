import Crypto

/// One version of an org's key-encryption key, unwrapped (memory only, never written).
package struct OrgKey: Sendable {
    package var org: String
    package var version: Int
    package var key: SymmetricKey

    /// What the root binds to the wrapped key: a wrapped key moved to another org or version does
    /// not unwrap.
    static func wrappingContext(org: String, version: Int) -> [UInt8] {
        Array("warden org key v1\u{0}\(org)\u{0}\(version)".utf8)
    }
}
