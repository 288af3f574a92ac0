import Crypto
import Foundation

/// One version of an org's key-encryption key, unwrapped (memory only, never written).
package struct OrgKey: Sendable {
    package var org: String
    package var version: Int
    package var key: SymmetricKey

    /// What the root binds to the wrapped key: a wrapped key moved to another org or version does
    /// not unwrap, nor does a bound key whose row was changed to say it is not bound.
    package static func wrappingContext(org: String, version: Int, bound: Bool) -> [UInt8] {
        bound
            ? Array("warden org key v2\u{0}\(org)\u{0}\(version)\u{0}bound to a share".utf8)
            : Array("warden org key v1\u{0}\(org)\u{0}\(version)".utf8)
    }

    /// The key an org key bound to a share (`OrgKeyShares`) stands for: what the root unwraps,
    /// combined with the share outside the database. Done on a cache miss only, never per read.
    func bound(to share: [UInt8]) -> OrgKey {
        let combined = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key, salt: share, info: Array("warden org key share v1\u{0}\(org)\u{0}\(version)".utf8), outputByteCount: 32)
        return OrgKey(org: org, version: version, key: combined)
    }
}
