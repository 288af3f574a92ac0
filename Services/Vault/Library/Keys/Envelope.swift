import Crypto

/// Envelope encryption of one record: the value sealed with AES-256-GCM under a fresh random data
/// key, the data key sealed under an org key. Both bind `context` (which org, record and version
/// the value belongs to) as associated data, so a ciphertext copied to another record, version or
/// org fails to open.
package struct Envelope: Sendable, Equatable {
    package var ciphertext: [UInt8]
    package var wrappedDataKey: [UInt8]
    package var orgKeyVersion: Int

    package init(ciphertext: [UInt8], wrappedDataKey: [UInt8], orgKeyVersion: Int) {
        self.ciphertext = ciphertext
        self.wrappedDataKey = wrappedDataKey
        self.orgKeyVersion = orgKeyVersion
    }

    package static func seal(_ plaintext: [UInt8], under orgKey: OrgKey, context: [UInt8]) throws -> Envelope {
        let dataKey = SymmetricKey(size: .bits256)
        let ciphertext = try AES.GCM.seal(plaintext, using: dataKey, authenticating: valueContext(context)).combined!
        let wrapped = try dataKey.withUnsafeBytes { bytes in
            try AES.GCM.seal(Array(bytes), using: orgKey.key, authenticating: dataKeyContext(context, orgKeyVersion: orgKey.version)).combined!
        }
        return Envelope(ciphertext: Array(ciphertext), wrappedDataKey: Array(wrapped), orgKeyVersion: orgKey.version)
    }

    /// The plaintext; throws `EnvelopeError` naming `record` when anything does not match.
    package func open(with orgKey: OrgKey, context: [UInt8], record: String) throws(EnvelopeError) -> [UInt8] {
        do {
            let dataKey = try unwrapDataKey(with: orgKey, context: context)
            return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: ciphertext), using: dataKey, authenticating: Self.valueContext(context)))
        } catch {
            throw EnvelopeError(record: record)
        }
    }

    /// The same value and data key, the data key wrapped under `newKey` instead.
    package func rewrapped(from oldKey: OrgKey, to newKey: OrgKey, context: [UInt8], record: String) throws(EnvelopeError) -> Envelope {
        do {
            let dataKey = try unwrapDataKey(with: oldKey, context: context)
            let wrapped = try dataKey.withUnsafeBytes { bytes in
                try AES.GCM.seal(Array(bytes), using: newKey.key, authenticating: Self.dataKeyContext(context, orgKeyVersion: newKey.version))
                    .combined!
            }
            return Envelope(ciphertext: ciphertext, wrappedDataKey: Array(wrapped), orgKeyVersion: newKey.version)
        } catch {
            throw EnvelopeError(record: record)
        }
    }

    private func unwrapDataKey(with orgKey: OrgKey, context: [UInt8]) throws -> SymmetricKey {
        guard orgKey.version == orgKeyVersion else { throw EnvelopeError(record: "") }
        let raw = try AES.GCM.open(
            AES.GCM.SealedBox(combined: wrappedDataKey), using: orgKey.key, authenticating: Self.dataKeyContext(context, orgKeyVersion: orgKeyVersion)
        )
        return SymmetricKey(data: raw)
    }

    static func valueContext(_ context: [UInt8]) -> [UInt8] { Array("warden value v1\u{0}".utf8) + context }

    static func dataKeyContext(_ context: [UInt8], orgKeyVersion: Int) -> [UInt8] {
        Array("warden data key v1\u{0}".utf8) + context + Array("\u{0}\(orgKeyVersion)".utf8)
    }
}
