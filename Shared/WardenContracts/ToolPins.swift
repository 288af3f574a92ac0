import Foundation

/// Whether an org's new tools are usable on first sight (their definition recorded then) or only
/// once an admin approves them. A changed definition is held for approval either way.
public enum ToolTrust: String, Codable, Sendable, CaseIterable {
    case firstUse = "first-use"
    case approval
}

/// One tool's pinned definition, as the admin API shows it.
public struct ToolPinRecord: Codable, Sendable, Equatable {
    /// The namespaced name (`server__tool`).
    public var tool: String
    /// `approved`, `pending` (new, never approved) or `changed` (approved once; a new definition waits).
    public var status: String
    public var approvedFingerprint: String?
    public var pendingFingerprint: String?
    /// Why a pending definition is held beyond being new or changed: invisible characters, where.
    public var flags: [String]
    public var firstSeen: Date
    public var pendingSince: Date?
    public var approvedBy: String?
    public var approvedAt: Date?

    public init(
        tool: String, status: String, approvedFingerprint: String?, pendingFingerprint: String?, flags: [String], firstSeen: Date,
        pendingSince: Date?, approvedBy: String?, approvedAt: Date?
    ) {
        self.tool = tool
        self.status = status
        self.approvedFingerprint = approvedFingerprint
        self.pendingFingerprint = pendingFingerprint
        self.flags = flags
        self.firstSeen = firstSeen
        self.pendingSince = pendingSince
        self.approvedBy = approvedBy
        self.approvedAt = approvedAt
    }
}

public struct ToolPinList: Codable, Sendable, Equatable {
    public var org: String
    public var trust: ToolTrust
    public var tools: [ToolPinRecord]

    public init(org: String, trust: ToolTrust, tools: [ToolPinRecord]) {
        self.org = org
        self.trust = trust
        self.tools = tools
    }
}

/// The approved and the pending definition of one tool, and the lines that differ.
public struct ToolPinDiff: Codable, Sendable, Equatable {
    public var tool: String
    public var approved: String?
    public var pending: String?
    public var approvedFingerprint: String?
    public var pendingFingerprint: String?
    public var flags: [String]
    /// A line diff of the two definitions (pretty JSON): `-` approved only, `+` pending only, ` ` both.
    public var diff: [String]

    public init(
        tool: String, approved: String?, pending: String?, approvedFingerprint: String?, pendingFingerprint: String?, flags: [String],
        diff: [String]
    ) {
        self.tool = tool
        self.approved = approved
        self.pending = pending
        self.approvedFingerprint = approvedFingerprint
        self.pendingFingerprint = pendingFingerprint
        self.flags = flags
        self.diff = diff
    }
}

public struct ToolPinApproval: Codable, Sendable, Equatable {
    public var org: String
    /// One tool (namespaced), or every pending tool of `server`, or (neither) every pending tool.
    public var tool: String?
    public var server: String?
    /// Approve only if the pending definition is still this one (what the admin looked at).
    public var fingerprint: String?

    public init(org: String, tool: String? = nil, server: String? = nil, fingerprint: String? = nil) {
        self.org = org
        self.tool = tool
        self.server = server
        self.fingerprint = fingerprint
    }
}

public struct ToolPinsApproved: Codable, Sendable, Equatable {
    public var approved: [String]
    public init(approved: [String]) { self.approved = approved }
}

public struct ToolTrustSetting: Codable, Sendable, Equatable {
    public var org: String
    public var trust: ToolTrust

    public init(org: String, trust: ToolTrust) {
        self.org = org
        self.trust = trust
    }
}
