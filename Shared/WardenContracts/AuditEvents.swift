import Foundation

/// The durable stream every service writes its audit events to (JetStream: events survive restarts
/// of whoever reads them). The gateway creates it; services publish with `AuditEvent.subject`.
public enum AuditStream {
    public static let name = "WARDEN_AUDIT"
    public static let subjects = ["warden.audit.events.>"]
    /// Kept this long in the stream (the audit service stores them for good).
    public static let maxAge: Duration = .seconds(30 * 24 * 3600)

    public static func subject(of service: WardenServiceName) -> String { "warden.audit.events.\(service.rawValue)" }

    /// Where the audit service announces each record it stored (an `AuditChainedRecord`), per org
    /// (`_platform`: the platform's own; a `.` in an org's id is `~` here, so it stays one token):
    /// change data capture for SIEMs. nil for a chain that is no org id.
    public static func storedSubject(org: String?) -> String? {
        guard let org else { return "warden.audit.stored._platform" }
        guard AuditCheckpoint.isChainName(org) else { return nil }
        let token = org.utf8.contains(UInt8(ascii: ".")) ? org.replacingOccurrences(of: ".", with: "~") : org
        return "warden.audit.stored.\(token)"
    }
}

/// One thing that happened, for the record. Never holds a secret value.
public struct AuditEvent: Codable, Sendable, Equatable {
    /// Unless given, a UUID of version 7 made from `time` (`UniqueID`): ids sort with times.
    public var id: String
    public var time: Date
    public var service: WardenServiceName
    /// What happened, dotted: `oauth.refresh_failed`.
    public var action: String
    public enum Outcome: String, Codable, Sendable {
        case success, failure, denied
    }

    public var outcome: Outcome
    public var org: String?
    /// Who acted (an admin principal, `agent:<id>`, or the service itself).
    public var actor: String
    /// What it concerned (a connection, a secret path, a tool).
    public var target: String
    public var detail: String
    /// For an MCP request through the gateway (`mcp.call`): who, what, how it was decided, how it went.
    public var call: AuditCall?
    /// The request it happened in (`X-Request-Id`, carried across services): one id finds its
    /// log lines, its trace and its record.
    public var requestID: String?

    public init(
        id: String? = nil, time: Date = Date(), service: WardenServiceName, action: String, outcome: Outcome, org: String?,
        actor: String, target: String, detail: String, call: AuditCall? = nil, requestID: String? = nil
    ) {
        self.call = call
        self.requestID = requestID
        // Made from the event's time (not the clock now): ids sort with the events' times.
        self.id = id ?? UniqueID.make(at: time)
        self.time = time
        self.service = service
        self.action = action
        self.outcome = outcome
        self.org = org
        self.actor = actor
        self.target = target
        self.detail = detail
    }
}
