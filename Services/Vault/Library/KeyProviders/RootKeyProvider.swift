/// Where the root key lives and how org keys are wrapped with it. The root key never leaves its
/// provider's process or device more than `wrap` and `unwrap` need: for `local` it is in this
/// process; for `pkcs11` in a hardware module; for `aws-kms` in KMS.
///
/// `context` is bound to each wrapped key (associated data, or KMS's encryption context): a wrapped
/// key copied to another org or version does not unwrap.
package protocol RootKeyProvider: Sendable {
    /// `local`, `pkcs11` or `aws-kms`.
    var kind: String { get }
    /// Names the root key without revealing anything about it (a fingerprint, a key label or ARN):
    /// stored with every org key it wraps, so that a rotation knows what is left to move.
    var keyID: String { get }
    func wrap(_ key: [UInt8], context: [UInt8]) async throws -> [UInt8]
    func unwrap(_ wrapped: [UInt8], context: [UInt8]) async throws -> [UInt8]
}
