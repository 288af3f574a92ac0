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

    package static func hash(previous: String, position: Int64, body: String) -> String {
        var data = Data(previous.utf8)
        data.append(0x0A)
        data.append(contentsOf: Array(String(position).utf8))
        data.append(0x0A)
        data.append(contentsOf: Array(body.utf8))
        return hex(SHA256.hash(data: data))
    }

    package static func hex(_ bytes: some Sequence<UInt8>) -> String { LowercaseHex.string(bytes) }
}
