import Crypto
import Foundation
import WardenContracts

/// How an org's records are chained: each record's hash covers the previous record's hash, its own
/// position and the event exactly as stored, so altering, removing, inserting or reordering any
/// record breaks every hash after it. Shared by the audit service and `warden audit verify --file`
/// (an auditor's tool needs nothing else). No I/O.
package enum AuditChain {
    /// What the first record of a chain follows.
    package static let genesis = String(repeating: "0", count: 64)

    /// SHA-256 over `previous`, a newline, the position in decimal, a newline and `body` (UTF-8),
    /// in hex. Hashed in place: copying the three into one buffer first was two copies of the body
    /// a record, in ingestion and in verification.
    package static func hash(previous: String, position: Int64, body: String) -> String {
        var hasher = SHA256()
        func update(_ text: String) {
            var text = text
            text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        }
        func newline() { withUnsafeBytes(of: UInt8(0x0A)) { hasher.update(bufferPointer: $0) } }
        update(previous)
        newline()
        update(String(position))
        newline()
        update(body)
        return hex(hasher.finalize())
    }

    package static func hex(_ bytes: some ContiguousBytes) -> String { LowercaseHex.string(bytes) }
}
