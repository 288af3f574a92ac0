import Foundation

/// A signed statement about an org's chain, made and kept by the vault (the audit service asks; the
/// key never leaves the vault):
/// - a **checkpoint**: the chain had `hash` at `position`. The vault signs positions only forward and
///   keeps every checkpoint it signed, so rewriting records before one, even with every hash
///   recomputed, or deleting checkpoints from the audit schema, no longer matches what it holds;
/// - a **base**: retention removed records 1…`position`, and the chain now starts after them. The
///   vault signs a base only where it signed a checkpoint with the same hash.
public struct AuditCheckpoint: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case checkpoint, base
    }

    /// nil: a checkpoint.
    public var kind: Kind?
    /// The chain (nil: the platform's own).
    public var org: String?
    public var position: Int64
    public var hash: String
    /// When it was signed, in Unix milliseconds (exactly as signed).
    public var signedAt: Int64
    public var keyID: String
    /// Ed25519 over `statement`, base64.
    public var signature: String

    public init(
        kind: Kind? = nil, org: String?, position: Int64, hash: String, signedAt: Int64, keyID: String, signature: String
    ) {
        self.kind = kind == .checkpoint ? nil : kind
        self.org = org
        self.position = position
        self.hash = hash
        self.signedAt = signedAt
        self.keyID = keyID
        self.signature = signature
    }

    public var isBase: Bool { kind == .base }

    /// The exact text signed.
    public var statement: String { Self.statement(kind: kind ?? .checkpoint, org: org, position: position, hash: hash, signedAt: signedAt) }

    public static func statement(kind: Kind, org: String?, position: Int64, hash: String, signedAt: Int64) -> String {
        "warden-audit-\(kind.rawValue)/v1\norg=\(org ?? "")\nposition=\(position)\nhash=\(hash)\nsigned-at=\(signedAt)\n"
    }

    /// Whether `name` may name a chain: an org id as the admin API allows them (letters, digits,
    /// `.`, `_`, `-`; at most 64), so that statements and subjects built from it cannot be ambiguous.
    public static func isChainName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F
                    || byte == 0x2D
            }
    }

    /// Whether `hash` is a chain hash (64 lowercase hex digits).
    public static func isChainHash(_ hash: String) -> Bool {
        hash.utf8.count == 64 && hash.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}

/// The vault signs audit checkpoints (for the audit service only) and publishes the public keys.
public enum AuditKeyEndpoints {
    public static let sign = ServiceEndpoint<AuditSignRequest, AuditCheckpoint>(.vault, "audit.sign")
    public static let keys = ServiceEndpoint<AuditKeysRequest, AuditPublicKeys>(.vault, "audit.keys")
    /// What the vault signed for a chain: its checkpoints after a position, and its latest base.
    public static let signed = ServiceEndpoint<AuditSignedRequest, AuditSignedStatements>(.vault, "audit.signed")
    /// Sets a chain's retention period where the vault enforces it (`AuditRetentionSetting`).
    public static let retention = ServiceEndpoint<AuditRetentionSetting, AuditRetentionSetting>(.vault, "audit.retention")
}

/// Asks the vault to sign a checkpoint of a chain's head, or a base (see `AuditCheckpoint`).
public struct AuditSignRequest: Codable, Sendable, Equatable {
    public var kind: AuditCheckpoint.Kind
    public var org: String?
    public var position: Int64
    public var hash: String
    public init(kind: AuditCheckpoint.Kind = .checkpoint, org: String?, position: Int64, hash: String) {
        self.kind = kind
        self.org = org
        self.position = position
        self.hash = hash
    }
}

public struct AuditSignedRequest: Codable, Sendable, Equatable {
    public var org: String?
    public var after: Int64
    public init(org: String?, after: Int64 = 0) {
        self.org = org
        self.after = after
    }
}

public struct AuditSignedStatements: Codable, Sendable, Equatable {
    /// Checkpoints per answer at most (ask again after the last).
    public static let pageSize = 10_000
    public var checkpoints: [AuditCheckpoint]
    public var base: AuditCheckpoint?
    public init(checkpoints: [AuditCheckpoint], base: AuditCheckpoint?) {
        self.checkpoints = checkpoints
        self.base = base
    }
}

public struct AuditKeysRequest: Codable, Sendable, Equatable {
    public init() {}
}

/// The audit signing keys' public halves (published at `/.well-known/warden-audit-keys`).
public struct AuditPublicKeys: Codable, Sendable, Equatable {
    public var keys: [AuditPublicKey]
    public init(keys: [AuditPublicKey]) { self.keys = keys }
}

public struct AuditPublicKey: Codable, Sendable, Equatable {
    public static let ed25519 = "Ed25519"
    public var id: String
    public var algorithm: String
    /// The raw 32-byte public key, base64.
    public var publicKey: String
    public init(id: String, algorithm: String = AuditPublicKey.ed25519, publicKey: String) {
        self.id = id
        self.algorithm = algorithm
        self.publicKey = publicKey
    }
}

/// Records in chain order with their hashes and exact bodies, for export.
public struct AuditRecordsRequest: Codable, Sendable, Equatable {
    public var org: String?
    /// Records after this position (0: from the start).
    public var after: Int64
    public var limit: Int
    public init(org: String?, after: Int64 = 0, limit: Int = 1_000) {
        self.org = org
        self.after = after
        self.limit = limit
    }
}

/// One stored record as it is chained: the body is the event exactly as hashed.
public struct AuditChainedRecord: Codable, Sendable, Equatable {
    public var position: Int64
    public var previousHash: String
    public var hash: String
    public var body: String
    public init(position: Int64, previousHash: String, hash: String, body: String) {
        self.position = position
        self.previousHash = previousHash
        self.hash = hash
        self.body = body
    }
}

public struct AuditChainPage: Codable, Sendable, Equatable {
    public var records: [AuditChainedRecord]
    /// The checkpoints among these records.
    public var checkpoints: [AuditCheckpoint]
    /// Where the chain starts when retention removed its leading records.
    public var base: AuditCheckpoint?
    /// Pass as `after` for the next page; nil at the end.
    public var next: Int64?
    public init(records: [AuditChainedRecord], checkpoints: [AuditCheckpoint], base: AuditCheckpoint?, next: Int64?) {
        self.records = records
        self.checkpoints = checkpoints
        self.base = base
        self.next = next
    }
}

extension AuditEvent {
    /// What an indexed column holds of a text from the event: PostgreSQL text cannot hold NUL.
    public static func column(_ text: String) -> String {
        // Foundation's replacement costs microseconds even when there is nothing to replace (three columns a record).
        text.utf8.contains(0) ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
    }

    /// The name a record is found by: the tool, prompt or resource, else the target.
    public var recordName: String { call?.name ?? target }
}
