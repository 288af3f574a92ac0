import Crypto
import Foundation
import WardenContracts

/// Walks one chain in order: each row must follow the one before (position, previous hash), its hash
/// must be what its contents give, its columns must say what its body says, and where a signed
/// checkpoint names its position, its hash must be the one signed. A chain whose leading records
/// were removed by retention starts after its base, a signed checkpoint. Returns the first row that
/// does not hold and why.
package struct AuditChainWalk: Sendable {
    package private(set) var count: Int64 = 0
    package private(set) var checkpointsVerified = 0
    /// The last position a valid checkpoint covers (0: none).
    package private(set) var signedThrough: Int64 = 0
    var expectedPosition: Int64
    var previous: String
    let checkpoints: [Int64: AuditCheckpoint]
    let keys: [String: Curve25519.Signing.PublicKey]

    /// - Parameters:
    ///   - base: where the chain starts when retention removed its leading records (a signed checkpoint).
    ///   - checkpoints: the chain's checkpoints; each is checked where the walk reaches its position.
    ///   - keys: the audit signing keys by id (`AuditPublicKeys`).
    package init(base: AuditCheckpoint? = nil, checkpoints: [AuditCheckpoint] = [], keys: [String: Curve25519.Signing.PublicKey] = [:]) {
        expectedPosition = (base?.position ?? 0) + 1
        previous = base?.hash ?? AuditChain.genesis
        self.checkpoints = Dictionary(checkpoints.filter { !$0.isBase }.map { ($0.position, $0) }, uniquingKeysWith: { first, _ in first })
        self.keys = keys
    }

    /// Checks the chain's base before the walk (nil: it is a valid checkpoint, or there is none).
    package func checkBase(_ base: AuditCheckpoint?) -> String? {
        guard let base else { return nil }
        return base.isBase && base.isSigned(by: keys)
            ? nil : "the chain's start (records 1–\(base.position) removed by retention) is not a base the vault signed"
    }

    package mutating func check(_ row: AuditChainRow) -> String? {
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
        if row.eventID != nil || row.action != nil || row.outcome != nil || row.agent != nil || row.name != nil || row.time != nil {
            // Byte for byte: String's == treats canonically equivalent texts as equal.
            func same(_ column: String?, _ value: String) -> Bool { column.map { $0.utf8.elementsEqual(value.utf8) } ?? true }
            guard let event = AuditEventReader.stored(row.body), same(row.eventID, event.id),
                same(row.action, AuditEvent.column(event.action)), same(row.outcome, event.outcome.rawValue),
                same(row.agent, event.call?.agent.map(AuditEvent.column) ?? ""), same(row.name, AuditEvent.column(event.recordName)),
                row.time.map({ abs($0.timeIntervalSince(event.time)) < 0.001 }) ?? true
            else { return "record \(row.position) was altered (its columns do not match its body)" }
        }
        if let checkpoint = checkpoints[row.position] {
            guard checkpoint.hash == row.hash else {
                return "record \(row.position) is not the record signed at \(checkpoint.signedAtText) (the chain was rewritten)"
            }
            guard checkpoint.isSigned(by: keys) else { return "the checkpoint at record \(row.position) is not validly signed" }
            checkpointsVerified += 1
            signedThrough = row.position
        }
        return nil
    }

    /// After the last row: the chain's head must name it (records removed from the end, or a head
    /// rewritten to hide them, show here), and no checkpoint may name a record past the end.
    package func finish(headPosition: Int64?, headHash: String?) -> String? {
        let last = expectedPosition - 1
        if let beyond = checkpoints.keys.filter({ $0 > last }).min() {
            return "records \(last + 1)–\(beyond) were signed at \(checkpoints[beyond]!.signedAtText) but are missing"
        }
        guard let headPosition else { return count == 0 ? nil : "the chain's head is missing" }
        if headPosition > last { return "records \(last + 1)–\(headPosition) are missing from the end" }
        if headPosition < last { return "the chain's head names record \(headPosition) but records run to \(last)" }
        if count > 0, headHash != previous { return "the last record is not the one the chain's head names" }
        return nil
    }
}

extension AuditCheckpoint {
    /// Whether one of `keys` signed this checkpoint's statement.
    package func isSigned(by keys: [String: Curve25519.Signing.PublicKey]) -> Bool {
        // Canonical base64 only: a decoder ignores a final character's spare bits, and a signature
        // written two ways would let an export change without failing.
        guard let key = keys[keyID], let signature = Data(base64Encoded: signature), signature.base64EncodedString() == self.signature else {
            return false
        }
        return key.isValidSignature(signature, for: Data(statement.utf8))
    }

    var signedAtText: String { Date(timeIntervalSince1970: Double(signedAt) / 1000).formatted(.iso8601) }
}

extension AuditPublicKeys {
    /// The keys by id (malformed ones left out: nothing they "signed" verifies).
    package var signingKeys: [String: Curve25519.Signing.PublicKey] {
        var result: [String: Curve25519.Signing.PublicKey] = [:]
        for key in keys where key.algorithm == AuditPublicKey.ed25519 {
            if let raw = Data(base64Encoded: key.publicKey), let value = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) {
                result[key.id] = value
            }
        }
        return result
    }
}
