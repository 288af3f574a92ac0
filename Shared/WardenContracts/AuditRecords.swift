import Foundation

/// The stored audit record, over NATS (the gateway's admin API asks the audit service).
public enum AuditEndpoints {
    public static let query = ServiceEndpoint<AuditQuery, AuditRecordPage>(.audit, "audit.query")
    public static let verify = ServiceEndpoint<AuditVerifyRequest, AuditVerification>(.audit, "audit.verify")
    /// Records in chain order with hashes, bodies and checkpoints (export).
    public static let records = ServiceEndpoint<AuditRecordsRequest, AuditChainPage>(.audit, "audit.records")
    /// Sets how long an org's records are kept.
    public static let retention = ServiceEndpoint<AuditRetentionSetting, AuditRetentionSetting>(.audit, "audit.retention")
    /// Signs the chain's head now (an export ends at a checkpoint); nil for an empty chain.
    public static let checkpoint = ServiceEndpoint<AuditVerifyRequest, AuditCheckpointResult>(.audit, "audit.checkpoint")
}

/// How long an org's records are kept: `days` (nil: for good). Older records are removed as whole
/// leading segments up to a signed checkpoint, which keeps the rest verifiable.
public struct AuditRetentionSetting: Codable, Sendable, Equatable {
    public var org: String?
    public var days: Int?
    public init(org: String?, days: Int?) {
        self.org = org
        self.days = days
    }
}

public struct AuditCheckpointResult: Codable, Sendable, Equatable {
    public var checkpoint: AuditCheckpoint?
    public init(checkpoint: AuditCheckpoint?) { self.checkpoint = checkpoint }
}

/// Which records: an org's (nil: the platform's own, events without an org), newest first.
public struct AuditQuery: Codable, Sendable, Equatable {
    public var org: String?
    public var action: String?
    public var agent: String?
    public var name: String?
    public var outcome: String?
    public var since: Date?
    public var until: Date?
    /// Records before this position (the cursor of the previous page).
    public var before: Int64?
    public var limit: Int

    public init(
        org: String?, action: String? = nil, agent: String? = nil, name: String? = nil, outcome: String? = nil, since: Date? = nil,
        until: Date? = nil, before: Int64? = nil, limit: Int = 100
    ) {
        self.org = org
        self.action = action
        self.agent = agent
        self.name = name
        self.outcome = outcome
        self.since = since
        self.until = until
        self.before = before
        self.limit = limit
    }
}

/// One stored record: its place in its org's chain, the hashes that chain it, and the event.
public struct AuditRecord: Codable, Sendable, Equatable {
    public var position: Int64
    public var hash: String
    public var previousHash: String
    public var event: AuditEvent

    public init(position: Int64, hash: String, previousHash: String, event: AuditEvent) {
        self.position = position
        self.hash = hash
        self.previousHash = previousHash
        self.event = event
    }
}

public struct AuditRecordPage: Codable, Sendable, Equatable {
    public var records: [AuditRecord]
    /// Pass as `before` for the next (older) page; nil at the start of the chain.
    public var next: Int64?

    public init(records: [AuditRecord], next: Int64?) {
        self.records = records
        self.next = next
    }
}

public struct AuditVerifyRequest: Codable, Sendable, Equatable {
    public var org: String?
    public init(org: String?) { self.org = org }
}

/// Whether an org's chain is intact; if not, the first record that is not what was written.
public struct AuditVerification: Codable, Sendable, Equatable {
    public var org: String?
    public var records: Int64
    public var intact: Bool
    /// The first position at which the chain breaks, and how.
    public var brokenAt: Int64?
    public var problem: String?
    /// Signed checkpoints found valid along the chain, and the last record they cover.
    public var checkpoints: Int?
    public var signedThrough: Int64?
    /// When the last checkpoint was signed (an export's: when it was made).
    public var signedAt: Date?
    /// The chain starts after this record (retention removed the records before; a signed checkpoint).
    public var startsAfter: Int64?

    public init(org: String?, records: Int64, intact: Bool, brokenAt: Int64? = nil, problem: String? = nil) {
        self.org = org
        self.records = records
        self.intact = intact
        self.brokenAt = brokenAt
        self.problem = problem
    }
}
