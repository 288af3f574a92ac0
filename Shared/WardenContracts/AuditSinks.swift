import Foundation

/// An org's webhook sinks: endpoints (a SIEM's collector) that get every record stored in the org's
/// chain, in chain order, at least once. Kept in the vault (`secretPath`): URLs and secrets are
/// credentials.
public struct AuditSinks: Codable, Sendable, Equatable {
    public var sinks: [AuditSink]

    public init(sinks: [AuditSink] = []) { self.sinks = sinks }

    /// The vault path they are kept at (per org).
    public static let secretPath = "audit/sinks"
    /// Sinks per org at most.
    public static let maximumCount = 8

    /// The same sinks with every secret and URL path replaced, for showing.
    public var masked: AuditSinks {
        AuditSinks(
            sinks: sinks.map { sink in
                var masked = sink
                masked.url = URL(string: sink.url).flatMap { url in url.host.map { "\(url.scheme ?? "https")://\($0)/…" } } ?? "set"
                masked.secret = "set"
                return masked
            })
    }
}

/// One webhook sink.
public struct AuditSink: Codable, Sendable, Equatable {
    /// Names the sink within its org (letters, digits, `-`, `_`; up to 64).
    public var id: String
    /// Where records are posted (https, or http on this machine where allowed).
    public var url: String
    /// Signs each delivery: `Warden-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
    public var secret: String
    /// Where a new sink starts: `now` (records stored from now on; the default) or `start` (the
    /// whole chain as it is kept).
    public var from: Start?

    public enum Start: String, Codable, Sendable { case now, start }

    public init(id: String, url: String, secret: String, from: Start? = nil) {
        self.id = id
        self.url = url
        self.secret = secret
        self.from = from
    }
}

/// How far a sink has got, as the gateway relaying to it knows.
public struct AuditSinkStatus: Codable, Sendable, Equatable {
    public var id: String
    /// The last chain position the sink acknowledged (2xx).
    public var deliveredThrough: Int64
    /// Failed attempts since the last delivery.
    public var attempts: Int
    public var lastError: String?
    public var lastDeliveredAt: Date?
    public var nextAttemptAt: Date

    public init(id: String, deliveredThrough: Int64, attempts: Int, lastError: String?, lastDeliveredAt: Date?, nextAttemptAt: Date) {
        self.id = id
        self.deliveredThrough = deliveredThrough
        self.attempts = attempts
        self.lastError = lastError
        self.lastDeliveredAt = lastDeliveredAt
        self.nextAttemptAt = nextAttemptAt
    }
}

/// What `GET /admin/v1/orgs/:org/audit-sinks` answers: the sinks (masked) and how far each got.
public struct AuditSinksView: Codable, Sendable, Equatable {
    public var sinks: [AuditSink]
    public var status: [AuditSinkStatus]

    public init(sinks: [AuditSink], status: [AuditSinkStatus]) {
        self.sinks = sinks
        self.status = status
    }
}

/// What a sink receives in each POST: records of one org's chain, in order, as stored (each
/// record's `body` is the event exactly as hashed, so a receiver can check the chain itself).
public struct AuditSinkDelivery: Codable, Sendable, Equatable {
    public var org: String
    public var sink: String
    public var records: [AuditChainedRecord]

    public init(org: String, sink: String, records: [AuditChainedRecord]) {
        self.org = org
        self.sink = sink
        self.records = records
    }
}
