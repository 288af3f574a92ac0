import Crypto
import Foundation
import WardenContracts

/// How an org's records are chained: each record's hash covers the previous record's hash, its own
/// position and the event exactly as stored, so altering, removing, inserting or reordering any
/// record breaks every hash after it. No I/O.
enum AuditChain {
    /// What the first record of a chain follows.
    static let genesis = String(repeating: "0", count: 64)

    static func hash(previous: String, position: Int64, body: String) -> String {
        var data = Data(previous.utf8)
        data.append(0x0A)
        data.append(contentsOf: Array(String(position).utf8))
        data.append(0x0A)
        data.append(contentsOf: Array(body.utf8))
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// One stored row as verification reads it.
    struct Row: Equatable {
        var position: Int64
        var eventID: String
        var action: String
        var body: String
        var previousHash: String
        var hash: String
        /// The indexed columns queries filter on (each must say what the body says).
        var outcome: String? = nil
        var agent: String? = nil
        var name: String? = nil
    }

    /// Walks a chain in order: each row must follow the one before (position, previous hash), its
    /// hash must be what its contents give, and its columns must say what its body says. Returns the
    /// first row that does not hold and why; nil when the chain (and its head) are intact.
    struct Walk {
        var expectedPosition: Int64 = 1
        var previous = AuditChain.genesis
        var count: Int64 = 0

        mutating func check(_ row: Row) -> String? {
            defer {
                expectedPosition = row.position + 1
                previous = row.hash
                count += 1
            }
            if row.position != expectedPosition {
                return row.position > expectedPosition
                    ? "records \(expectedPosition)–\(row.position - 1) are missing" : "record \(row.position) is out of order"
            }
            if row.previousHash != previous { return "record \(row.position) does not follow record \(row.position - 1) (previous hash differs)" }
            if AuditChain.hash(previous: row.previousHash, position: row.position, body: row.body) != row.hash {
                return "record \(row.position) was altered (its hash does not match its contents)"
            }
            guard let event = try? EnvelopeCoding.decoder().decode(AuditEvent.self, from: Data(row.body.utf8)), event.id == row.eventID,
                AuditStore.column(event.action) == row.action, row.outcome.map({ $0 == event.outcome.rawValue }) ?? true,
                row.agent.map({ $0 == (event.call?.agent.map(AuditStore.column) ?? "") }) ?? true,
                row.name.map({ $0 == AuditStore.column(AuditStore.name(of: event)) }) ?? true
            else { return "record \(row.position) was altered (its columns do not match its body)" }
            return nil
        }

        /// After the last row: the chain's head must name it (records removed from the end, or a
        /// head rewritten to hide them, show here).
        func finish(headPosition: Int64?, headHash: String?) -> String? {
            guard let headPosition else { return count == 0 ? nil : "the chain's head is missing" }
            if headPosition > count { return "records \(count + 1)–\(headPosition) are missing from the end" }
            if headPosition < count { return "the chain's head names record \(headPosition) but records run to \(count)" }
            if count > 0, headHash != previous { return "the last record is not the one the chain's head names" }
            return nil
        }
    }
}
