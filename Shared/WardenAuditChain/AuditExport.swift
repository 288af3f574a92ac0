import Crypto
import Foundation
import WardenContracts

/// An org's chain as a file that verifies on its own: every record with its hashes and its exact
/// body, the signed checkpoints among them, and the chain's base when retention removed its start.
/// NDJSON (one JSON object a line) or CSV (RFC 4180; a few columns read from the body for people,
/// checked against it like everything else). `verify` needs only the file and the published keys.
package enum AuditExport {
    package enum Format: String, Sendable, CaseIterable {
        case ndjson, csv
    }

    package static let csvHeader = [
        "type", "position", "time", "action", "outcome", "actor", "target", "previous_hash", "hash", "body", "org", "signed_at", "key_id",
        "signature",
    ]

    /// One line of an NDJSON export.
    struct Line: Codable {
        var type: String
        var version: Int?
        var org: String?
        var position: Int64?
        var previousHash: String?
        var hash: String?
        var body: String?
        var signedAt: Int64?
        var keyID: String?
        var signature: String?
    }

    /// The first part of an export (written before any page).
    package static func header(org: String?, base: AuditCheckpoint?, format: Format) -> Data {
        switch format {
        case .ndjson:
            var text = line(Line(type: "warden-audit-export", version: 1, org: org))
            if let base { text += line(checkpointLine(base, type: "base")) }
            return Data(text.utf8)
        case .csv:
            var rows = [csvHeader]
            if let base { rows.append(csvRow(base, type: "base")) }
            return Data(rows.map(csvLine).joined().utf8)
        }
    }

    /// One page's records and checkpoints, in chain order.
    package static func page(_ page: AuditChainPage, format: Format) -> Data {
        let checkpoints = Dictionary(page.checkpoints.map { ($0.position, $0) }, uniquingKeysWith: { first, _ in first })
        var text = ""
        for record in page.records {
            switch format {
            case .ndjson:
                text += line(
                    Line(type: "record", position: record.position, previousHash: record.previousHash, hash: record.hash, body: record.body))
                if let checkpoint = checkpoints[record.position] { text += line(checkpointLine(checkpoint, type: "checkpoint")) }
            case .csv:
                let event = AuditEventReader.stored(record.body)
                text += csvLine([
                    "record", String(record.position), event.map { $0.time.formatted(.iso8601) } ?? "", event?.action ?? "",
                    event?.outcome.rawValue ?? "",
                    event?.actor ?? "", event?.target ?? "", record.previousHash, record.hash, record.body, "", "", "", "",
                ])
                if let checkpoint = checkpoints[record.position] { text += csvLine(csvRow(checkpoint, type: "checkpoint")) }
            }
        }
        return Data(text.utf8)
    }

    /// Verifies an export (NDJSON or CSV, told apart by its first byte) with the published keys.
    package static func verify(_ data: Data, keys: [String: Curve25519.Signing.PublicKey]) throws -> AuditVerification {
        let items = data.first == UInt8(ascii: "{") ? try ndjsonItems(data) : try csvItems(data)
        guard case .header(let org) = items.first else { throw AuditExportError("the file does not start like a Warden audit export") }
        var base: AuditCheckpoint?
        var rows: [AuditChainRow] = []
        var checkpoints: [AuditCheckpoint] = []
        for (index, item) in items.enumerated().dropFirst() {
            switch item {
            case .header: throw AuditExportError("line \(index + 1): a second header")
            case .base(let checkpoint):
                guard rows.isEmpty, base == nil else { throw AuditExportError("line \(index + 1): the chain's base must come first") }
                base = checkpoint
            case .record(let row): rows.append(row)
            case .checkpoint(let checkpoint): checkpoints.append(checkpoint)
            }
        }
        for checkpoint in checkpoints + (base.map { [$0] } ?? []) where checkpoint.org != org {
            return AuditVerification(
                org: org, records: 0, intact: false, brokenAt: checkpoint.position, problem: "a checkpoint of another chain is in this export")
        }
        var walk = AuditChainWalk(base: base, checkpoints: checkpoints, keys: keys)
        if let problem = walk.checkBase(base) {
            return AuditVerification(org: org, records: 0, intact: false, brokenAt: (base?.position ?? 0) + 1, problem: problem)
        }
        for row in rows {
            if let problem = walk.check(row) {
                return AuditVerification(org: org, records: walk.count, intact: false, brokenAt: row.position, problem: problem)
            }
        }
        let last = rows.last
        if let problem = walk.finish(headPosition: last?.position ?? base?.position, headHash: last?.hash ?? base?.hash) {
            return AuditVerification(org: org, records: walk.count, intact: false, brokenAt: (last?.position ?? 0) + 1, problem: problem)
        }
        guard let last else {
            return AuditVerification(org: org, records: 0, intact: false, problem: "the export holds no records")
        }
        guard walk.signedThrough == last.position else {
            return AuditVerification(
                org: org, records: walk.count, intact: false, brokenAt: walk.signedThrough + 1,
                problem: "records after \(walk.signedThrough) are not covered by a signed checkpoint (an export ends at one)")
        }
        var result = AuditVerification(org: org, records: walk.count, intact: true)
        result.checkpoints = walk.checkpointsVerified
        result.signedThrough = walk.signedThrough
        result.signedAt = checkpoints.first { $0.position == walk.signedThrough }.map { Date(timeIntervalSince1970: Double($0.signedAt) / 1000) }
        result.startsAfter = base?.position
        return result
    }

    enum Item {
        case header(org: String?)
        case base(AuditCheckpoint)
        case record(AuditChainRow)
        case checkpoint(AuditCheckpoint)
    }

    static func ndjsonItems(_ data: Data) throws -> [Item] {
        let decoder = JSONDecoder()
        var items: [Item] = []
        for (index, text) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() where !text.isEmpty {
            guard let line = try? decoder.decode(Line.self, from: text) else { throw AuditExportError("line \(index + 1) is not valid JSON") }
            // Exactly as written: no key added, repeated or spelled another way rides along unverified.
            guard Self.line(line).utf8.dropLast().elementsEqual(text) else {
                throw AuditExportError("line \(index + 1) is not as an export writes it (extra, repeated or reordered fields)")
            }
            switch line.type {
            case "warden-audit-export":
                guard line.version == 1 else { throw AuditExportError("line \(index + 1): export version \(line.version ?? 0) is not supported") }
                items.append(.header(org: line.org))
            case "record":
                guard let position = line.position, let previous = line.previousHash, let hash = line.hash, let body = line.body else {
                    throw AuditExportError("line \(index + 1): a record needs position, previousHash, hash and body")
                }
                items.append(.record(AuditChainRow(position: position, body: body, previousHash: previous, hash: hash)))
            case "checkpoint", "base":
                guard let position = line.position, let hash = line.hash, let signedAt = line.signedAt, let keyID = line.keyID,
                    let signature = line.signature
                else { throw AuditExportError("line \(index + 1): a checkpoint needs position, hash, signedAt, keyID and signature") }
                // The type is the statement's kind: a checkpoint relabelled as a base no longer verifies.
                let checkpoint = AuditCheckpoint(
                    kind: line.type == "base" ? .base : .checkpoint, org: line.org, position: position, hash: hash, signedAt: signedAt, keyID: keyID,
                    signature: signature)
                items.append(line.type == "base" ? .base(checkpoint) : .checkpoint(checkpoint))
            default: throw AuditExportError("line \(index + 1): unknown type '\(line.type.prefix(40))'")
            }
        }
        return items
    }

    static func csvItems(_ data: Data) throws -> [Item] {
        let rows = try CSV.rows(String(decoding: data, as: UTF8.self))
        guard rows.first == csvHeader else { throw AuditExportError("the file does not start like a Warden audit export") }
        var items: [Item] = [.header(org: nil)]
        var org: String??
        for (index, row) in rows.enumerated().dropFirst() {
            guard row.count == csvHeader.count else { throw AuditExportError("row \(index + 1) has \(row.count) fields, not \(csvHeader.count)") }
            let field = Dictionary(uniqueKeysWithValues: zip(csvHeader, row))
            // Each kind of row fills its own columns only: nothing can ride along unverified.
            let unused =
                field["type"] == "record"
                ? ["org", "signed_at", "key_id", "signature"] : ["time", "action", "outcome", "actor", "target", "previous_hash", "body"]
            guard unused.allSatisfy({ field[$0]!.isEmpty }) else { throw AuditExportError("row \(index + 1) fills columns its type does not have") }
            guard let position = Int64(field["position"]!) else { throw AuditExportError("row \(index + 1): the position is not a number") }
            switch field["type"]! {
            case "record":
                let body = field["body"]!
                // The columns for people must say what the body says.
                let event = AuditEventReader.stored(body)
                let expected = [
                    event.map { $0.time.formatted(.iso8601) } ?? "", event?.action ?? "", event?.outcome.rawValue ?? "", event?.actor ?? "",
                    event?.target ?? "",
                ]
                let readable = ["time", "action", "outcome", "actor", "target"].map { field[$0]! }
                // A mismatch is reported by the walk as an altered record: make its hash fail.
                let matches = zip(readable, expected).allSatisfy { $0.utf8.elementsEqual($1.utf8) }
                let hash = matches ? field["hash"]! : "columns-altered"
                items.append(.record(AuditChainRow(position: position, body: body, previousHash: field["previous_hash"]!, hash: hash)))
            case "checkpoint", "base":
                guard let signedAt = Int64(field["signed_at"]!) else { throw AuditExportError("row \(index + 1): signed_at is not a number") }
                let chain = field["org"]!.isEmpty ? nil : field["org"]
                if org == nil { org = .some(chain) }
                let checkpoint = AuditCheckpoint(
                    kind: field["type"] == "base" ? .base : .checkpoint, org: chain, position: position, hash: field["hash"]!, signedAt: signedAt,
                    keyID: field["key_id"]!, signature: field["signature"]!)
                items.append(field["type"] == "base" ? .base(checkpoint) : .checkpoint(checkpoint))
            default: throw AuditExportError("row \(index + 1): unknown type '\(field["type"]!.prefix(40))'")
            }
        }
        // A CSV export names its chain in its checkpoints (an export always ends at one).
        items[0] = .header(org: org ?? nil)
        return items
    }

    static func checkpointLine(_ checkpoint: AuditCheckpoint, type: String) -> Line {
        Line(
            type: type, org: checkpoint.org, position: checkpoint.position, hash: checkpoint.hash, signedAt: checkpoint.signedAt,
            keyID: checkpoint.keyID, signature: checkpoint.signature)
    }

    static func csvRow(_ checkpoint: AuditCheckpoint, type: String) -> [String] {
        [
            type, String(checkpoint.position), "", "", "", "", "", "", checkpoint.hash, "", checkpoint.org ?? "", String(checkpoint.signedAt),
            checkpoint.keyID, checkpoint.signature,
        ]
    }

    static func line(_ line: Line) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(line)) ?? Data(), as: UTF8.self) + "\n"
    }

    static func csvLine(_ fields: [String]) -> String { CSV.line(fields) }
}

/// Why an export could not be read.
package struct AuditExportError: Error, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}
