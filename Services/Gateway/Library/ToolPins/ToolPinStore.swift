import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// Pinned tool definitions and each org's trust setting, in the gateway's schema (`tool_pins`,
/// `tool_trust`). Replicas race to record what they see; each write is conditional, so the first
/// wins and the others read what it wrote.
package struct ToolPinStore: Sendable {
    let database: DatabasePool
    let logger: Logger

    package init(database: DatabasePool, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// The trust an org has when it set none: the deployment's (`*`, set on upgrade), else approval.
    package func trust(_ org: String) async throws -> ToolTrust {
        let rows = try await database.query(
            "SELECT mode FROM tool_trust WHERE org = \(org) OR org = '*' ORDER BY org = '*' LIMIT 1", logger: logger)
        for try await mode in rows.decode(String.self) { return ToolTrust(rawValue: mode) ?? .approval }
        return .approval
    }

    package func setTrust(_ org: String, _ trust: ToolTrust, actor: String) async throws {
        try await database.query(
            """
            INSERT INTO tool_trust (org, mode, set_by) VALUES (\(org), \(trust.rawValue), \(actor))
            ON CONFLICT (org) DO UPDATE SET mode = excluded.mode, set_by = excluded.set_by, set_at = now()
            """, logger: logger)
    }

    package func load(_ org: String) async throws -> OrgToolPins {
        var pins = OrgToolPins(trust: try await trust(org))
        let rows = try await database.query(
            "SELECT tool, approved_fingerprint, pending_fingerprint FROM tool_pins WHERE org = \(org)", logger: logger)
        for try await (tool, approved, pending) in rows.decode((String, String?, String?).self) {
            pins.pins[tool] = OrgToolPins.Pin(approved: approved, pending: pending)
        }
        return pins
    }

    /// Records a tool seen for the first time: approved when the org trusts on first use (read now,
    /// not from a copy that may predate a change) and nothing in it is invisible, else held.
    /// Another replica's record wins.
    package func recordFirstSight(org: String, tool: String, _ definition: ToolDefinition) async throws -> OrgToolPins.Pin {
        let approve = try await trust(org) == .firstUse && definition.flags.isEmpty
        let (approvedPrint, approvedText, pendingPrint, pendingText) =
            approve
            ? (definition.fingerprint as String?, definition.text as String?, nil as String?, nil as String?)
            : (nil, nil, definition.fingerprint, definition.text)
        try await database.query(
            """
            INSERT INTO tool_pins (org, tool, approved_fingerprint, approved_definition, approved_by, approved_at,
                                   pending_fingerprint, pending_definition, pending_flags, pending_since)
            VALUES (\(org), \(tool), \(approvedPrint), \(approvedText), \(approve ? "first-use" : nil), \(approve ? Date() : nil),
                    \(pendingPrint), \(pendingText), \(approve ? [] : definition.flags), \(approve ? nil : Date()))
            ON CONFLICT (org, tool) DO NOTHING
            """, logger: logger)
        return try await pin(org: org, tool: tool) ?? OrgToolPins.Pin(approved: approvedPrint, pending: pendingPrint)
    }

    /// Holds a definition that is neither the approved nor the pending one; true when this call
    /// recorded it (the event is raised once, whichever replica saw it first).
    package func hold(org: String, tool: String, _ definition: ToolDefinition) async throws -> (pin: OrgToolPins.Pin, recorded: Bool) {
        let rows = try await database.query(
            """
            UPDATE tool_pins SET pending_fingerprint = \(definition.fingerprint), pending_definition = \(definition.text),
                   pending_flags = \(definition.flags), pending_since = now()
            WHERE org = \(org) AND tool = \(tool)
              AND pending_fingerprint IS DISTINCT FROM \(definition.fingerprint)
              AND approved_fingerprint IS DISTINCT FROM \(definition.fingerprint)
            RETURNING tool
            """, logger: logger)
        let recorded = try await rows.collect().count == 1
        let pin = try await pin(org: org, tool: tool) ?? OrgToolPins.Pin(approved: nil, pending: definition.fingerprint)
        return (pin, recorded)
    }

    /// Clears a held definition when the approved one is listed again; the pin as it is then.
    package func withdrawPending(org: String, tool: String, approved: String) async throws -> OrgToolPins.Pin? {
        try await database.query(
            """
            UPDATE tool_pins SET pending_fingerprint = NULL, pending_definition = NULL, pending_flags = '{}', pending_since = NULL
            WHERE org = \(org) AND tool = \(tool) AND approved_fingerprint = \(approved) AND pending_fingerprint IS NOT NULL
            """, logger: logger)
        return try await pin(org: org, tool: tool)
    }

    func pin(org: String, tool: String) async throws -> OrgToolPins.Pin? {
        let rows = try await database.query(
            "SELECT approved_fingerprint, pending_fingerprint FROM tool_pins WHERE org = \(org) AND tool = \(tool)", logger: logger)
        for try await (approved, pending) in rows.decode((String?, String?).self) { return OrgToolPins.Pin(approved: approved, pending: pending) }
        return nil
    }

    package func records(org: String, pendingOnly: Bool) async throws -> [ToolPinRecord] {
        let rows = try await database.query(
            """
            SELECT tool, approved_fingerprint, pending_fingerprint, pending_flags, first_seen, pending_since, approved_by, approved_at
            FROM tool_pins WHERE org = \(org) AND (\(!pendingOnly) OR pending_fingerprint IS NOT NULL) ORDER BY tool
            """, logger: logger)
        var records: [ToolPinRecord] = []
        for try await (tool, approved, pending, flags, firstSeen, pendingSince, approvedBy, approvedAt) in rows.decode(
            (String, String?, String?, [String], Date, Date?, String?, Date?).self)
        {
            let status = pending == nil ? "approved" : approved == nil ? "pending" : "changed"
            records.append(
                ToolPinRecord(
                    tool: tool, status: status, approvedFingerprint: approved, pendingFingerprint: pending, flags: pending == nil ? [] : flags,
                    firstSeen: firstSeen, pendingSince: pendingSince, approvedBy: approvedBy, approvedAt: approvedAt))
        }
        return records
    }

    /// Both definitions of one tool (texts, fingerprints, flags), nil when it was never seen.
    package func definitions(org: String, tool: String) async throws -> ToolPinDiff? {
        let rows = try await database.query(
            """
            SELECT approved_definition, pending_definition, approved_fingerprint, pending_fingerprint, pending_flags
            FROM tool_pins WHERE org = \(org) AND tool = \(tool)
            """, logger: logger)
        for try await (approved, pending, approvedPrint, pendingPrint, flags) in rows.decode((String?, String?, String?, String?, [String]).self) {
            return ToolPinDiff(
                tool: tool, approved: approved, pending: pending, approvedFingerprint: approvedPrint, pendingFingerprint: pendingPrint,
                flags: pending == nil ? [] : flags, diff: [])
        }
        return nil
    }

    /// Makes pending definitions the approved ones: one tool (only if its pending fingerprint is
    /// still `fingerprint`, when given), a server's, or all of the org's. Returns the tools approved.
    package func approve(_ approval: ToolPinApproval, actor: String) async throws -> [String] {
        let prefix = approval.server.map { $0 + "__" }
        let rows = try await database.query(
            """
            UPDATE tool_pins SET approved_fingerprint = pending_fingerprint, approved_definition = pending_definition,
                   approved_by = \(actor), approved_at = now(),
                   pending_fingerprint = NULL, pending_definition = NULL, pending_flags = '{}', pending_since = NULL
            WHERE org = \(approval.org) AND pending_fingerprint IS NOT NULL
              AND (\(approval.tool)::text IS NULL OR tool = \(approval.tool))
              AND (\(prefix)::text IS NULL OR starts_with(tool, \(prefix)))
              AND (\(approval.fingerprint)::text IS NULL OR pending_fingerprint = \(approval.fingerprint))
            RETURNING tool
            """, logger: logger)
        var approved: [String] = []
        for try await tool in rows.decode(String.self) { approved.append(tool) }
        return approved.sorted()
    }
}
