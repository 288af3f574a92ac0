import Foundation

/// An org's choice when the audit stream cannot take events and the gateway's spool is full:
/// refuse its agents' requests (the default: nothing runs unrecorded) or let them continue
/// unrecorded (each gap is put on the record afterwards with how many requests it held).
public struct AuditContinuity: Codable, Sendable, Equatable {
    public var whenUnavailable: Choice
    public var setBy: String?
    public var setAt: Date?

    public enum Choice: String, Codable, Sendable { case refuse, `continue` }

    public init(whenUnavailable: Choice, setBy: String? = nil, setAt: Date? = nil) {
        self.whenUnavailable = whenUnavailable
        self.setBy = setBy
        self.setAt = setAt
    }
}
