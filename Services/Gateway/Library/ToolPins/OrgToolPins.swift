import WardenContracts

/// One org's pinned tool definitions as this replica last read them, and what a listed definition
/// means against them. A value without I/O: `ToolPins` performs what `verdict` asks for.
package struct OrgToolPins: Sendable, Equatable {
    package struct Pin: Sendable, Equatable {
        /// The fingerprint an admin approved (or first sight recorded under trust on first use).
        package var approved: String?
        /// A definition seen since and held for approval.
        package var pending: String?

        package init(approved: String?, pending: String?) {
            self.approved = approved
            self.pending = pending
        }
    }

    package var trust: ToolTrust
    /// By namespaced tool name.
    package var pins: [String: Pin]

    package init(trust: ToolTrust, pins: [String: Pin] = [:]) {
        self.trust = trust
        self.pins = pins
    }

    package enum Verdict: Sendable, Equatable {
        /// The approved definition: listed and callable.
        case usable
        /// Hidden and denied, already on record as pending.
        case held
        /// Never seen: record it, approved when `approve` (trust on first use, nothing invisible).
        case firstSight(approve: Bool)
        /// Seen with another definition than approved or pending: hold this one (hidden and denied).
        case changed
    }

    package func verdict(_ tool: String, _ definition: ToolDefinition) -> Verdict {
        guard let pin = pins[tool] else { return .firstSight(approve: trust == .firstUse && definition.flags.isEmpty) }
        if pin.approved == definition.fingerprint { return .usable }
        if pin.pending == definition.fingerprint { return .held }
        return .changed
    }
}
