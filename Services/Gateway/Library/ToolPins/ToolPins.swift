import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenMCP
import WardenNATS
import WardenServiceKit

/// Tool pinning: a tool is listed and called only with the definition its org approved (or first
/// saw, under trust on first use). A definition that changes later, or arrives with invisible
/// characters, is held: hidden and denied until an admin approves it (`ToolAdminRoutes`).
///
/// Each replica keeps every org's pins in memory once read (the per-call check is a dictionary
/// lookup and a fingerprint remembered per tool); a new or changed definition is written when first
/// seen, conditionally, so replicas agree on what came first. Approvals and trust changes are
/// announced on `changedSubject`: every replica drops the org's pins and its sessions are told the
/// tools changed.
package final class ToolPins: Service, Sendable {
    package static let changedSubject = "warden.gateway.broadcast.tools"

    struct Remembered {
        /// The listing revision it was last seen at (nil: from a merged listing).
        var revision: UInt64?
        var fields: [JSONValue?]
        var definition: ToolDefinition
    }

    struct State {
        var orgs: [String: (pins: OrgToolPins, expires: ContinuousClock.Instant)] = [:]
        /// Changes announced per org: pins read before a change are not kept.
        var generations: [String: Int] = [:]
        /// The last definition computed per namespaced tool (fingerprints are not recomputed per call).
        var remembered: [String: Remembered] = [:]
    }

    /// Definitions remembered; past it the memory starts again.
    static let maximumRemembered = 20_000

    let store: ToolPinStore
    let bus: NATSConnection?
    let audit: AuditPublisher
    let logger: Logger
    private let state = Mutex(State())
    /// Loads joined per org and generation: a load begun before a change is never shared after it.
    private let loads = SingleFlight<String, OrgToolPins>()
    /// How long an org's pins are kept without a change being announced (a lost announcement heals).
    let lifetime: Duration
    private let listeners = Mutex<[@Sendable (String) -> Void]>([])

    package init(store: ToolPinStore, bus: NATSConnection?, lifetime: Duration = .seconds(60), logger: Logger) {
        self.store = store
        self.lifetime = lifetime
        self.bus = bus
        self.audit = AuditPublisher(bus: bus, logger: logger)
        self.logger = logger
    }

    /// Called with the org whose usable tools changed (after an approval or a trust change).
    package func onChange(_ listener: @escaping @Sendable (String) -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    /// The tools among `tools` (listed entries, namespaced) that `org` may see; nil when the pins
    /// could not be read (the listing fails closed).
    package func usable(org: String, tools: [JSONValue]) async -> Set<String>? {
        var usable = Set<String>()
        for entry in tools {
            guard let name = entry["name"]?.stringValue else { continue }
            guard let allowed = await allows(org: org, tool: name, listed: entry) else { return nil }
            if allowed { usable.insert(name) }
        }
        return usable
    }

    /// Whether `org` may use `tool` as the server lists it now (`listed`: its entry, under any
    /// name, from the listing of `revision`); nil when the pins could not be read or written (the
    /// call fails closed).
    package func allows(org: String, tool: String, listed: JSONValue, revision: UInt64? = nil) async -> Bool? {
        let definition = self.definition(of: tool, listed, revision: revision)
        let pins: OrgToolPins
        do { pins = try await self.pins(org) } catch {
            logger.error("tool pins cannot be read; tools are refused", metadata: ["org": "\(org)", "error": "\(error)"])
            return nil
        }
        let verdict = pins.verdict(tool, definition)
        switch verdict {
        case .usable:
            if pins.pins[tool]?.pending != nil {
                // The server is back to the approved definition: what was held is moot, and must
                // not be approved later (with --server or --all) without anyone looking at it.
                await withdraw(org: org, tool: tool, definition)
            }
            return true
        case .held: return false
        case .firstSight:
            do {
                let generation = state.withLock { $0.generations[org, default: 0] }
                let pin = try await store.recordFirstSight(org: org, tool: tool, definition)
                remember(pin, tool: tool, org: org, generation: generation)
                if pin.pending == definition.fingerprint && pin.approved == nil {
                    await held(
                        org: org, tool: tool, definition, reason: definition.flags.isEmpty ? "new tool; the org approves new tools" : "new tool")
                }
                return pin.approved == definition.fingerprint
            } catch {
                logger.error("a new tool cannot be recorded; it is refused", metadata: ["org": "\(org)", "tool": "\(tool)", "error": "\(error)"])
                return nil
            }
        case .changed:
            do {
                let generation = state.withLock { $0.generations[org, default: 0] }
                let (pin, recorded) = try await store.hold(org: org, tool: tool, definition)
                remember(pin, tool: tool, org: org, generation: generation)
                if recorded {
                    await held(org: org, tool: tool, definition, reason: "definition changed since it was approved")
                    // The tool vanished from this org's listings: its sessions here are told at once.
                    for listener in listeners.withLock({ $0 }) { listener(org) }
                }
                return pin.approved == definition.fingerprint
            } catch {
                logger.error("a changed tool cannot be recorded; it is refused", metadata: ["org": "\(org)", "tool": "\(tool)", "error": "\(error)"])
                return nil
            }
        }
    }

    /// The definition's fingerprint: computed once per listing (the same revision costs a lookup;
    /// another revision with the same fields, a comparison).
    private func definition(of tool: String, _ listed: JSONValue, revision: UInt64?) -> ToolDefinition {
        let remembered = state.withLock { $0.remembered[tool] }
        if let remembered, let revision, remembered.revision == revision { return remembered.definition }
        let fields = ToolDefinition.pinnedFields.map { listed[$0] }
        let definition =
            if let remembered, remembered.fields == fields { remembered.definition } else { ToolDefinition(listed: listed) }
        state.withLock { state in
            if state.remembered.count >= Self.maximumRemembered { state.remembered.removeAll(keepingCapacity: true) }
            state.remembered[tool] = Remembered(revision: revision, fields: fields, definition: definition)
        }
        return definition
    }

    private func pins(_ org: String) async throws -> OrgToolPins {
        let now = ContinuousClock.now
        let (known, generation) = state.withLock { ($0.orgs[org], $0.generations[org, default: 0]) }
        if let known, known.expires > now { return known.pins }
        let loaded = try await loads.run("\(generation)|\(org)") { try await store.load(org) }
        state.withLock { state in
            if state.generations[org, default: 0] == generation { state.orgs[org] = (loaded, now + lifetime) }
        }
        return loaded
    }

    private func remember(_ pin: OrgToolPins.Pin, tool: String, org: String, generation: Int) {
        state.withLock { state in
            guard state.generations[org, default: 0] == generation else { return }
            state.orgs[org]?.pins.pins[tool] = pin
        }
    }

    /// Drops a held definition once the approved one is listed again.
    private func withdraw(org: String, tool: String, _ approved: ToolDefinition) async {
        let generation = state.withLock { $0.generations[org, default: 0] }
        do {
            if let pin = try await store.withdrawPending(org: org, tool: tool, approved: approved.fingerprint) {
                remember(pin, tool: tool, org: org, generation: generation)
            }
        } catch {
            logger.warning("a withdrawn tool definition stays on record", metadata: ["org": "\(org)", "tool": "\(tool)", "error": "\(error)"])
        }
    }

    /// A definition was held: on record, in the log, and in the audit stream.
    private func held(org: String, tool: String, _ definition: ToolDefinition, reason: String) async {
        let why = definition.flags.isEmpty ? reason : "\(reason); \(definition.flags.joined(separator: "; "))"
        logger.warning(
            "a tool definition is held for approval",
            metadata: ["org": "\(org)", "tool": "\(tool)", "fingerprint": "\(definition.fingerprint)", "reason": "\(why)"])
        await audit.publish(
            AuditEvent(
                service: .gateway, action: "tool.held", outcome: .denied, org: org, actor: "gateway", target: tool,
                detail: "\(why) (fingerprint \(definition.fingerprint.prefix(16)))"))
    }

    /// Records an admin's approval or trust change and tells every replica.
    package func announce(org: String, action: String, actor: String, target: String, detail: String) async {
        changed(org: org)
        do { try bus?.publish(Self.changedSubject, payload: Data(org.utf8)) } catch {
            // The other replicas learn of it when their copy expires (`lifetime`).
            logger.error("a tool pin change could not be announced", metadata: ["org": "\(org)", "error": "\(error)"])
        }
        await audit.publish(AuditEvent(service: .gateway, action: action, outcome: .success, org: org, actor: actor, target: target, detail: detail))
    }

    /// Drops what this replica knew of the org's pins and tells the listeners.
    func changed(org: String) {
        state.withLock { state in
            state.generations[org, default: 0] += 1
            state.orgs[org] = nil
        }
        for listener in listeners.withLock({ $0 }) { listener(org) }
    }

    package func run() async throws {
        guard let bus else { return try await gracefulShutdown() }
        let changes = try bus.subscribe(Self.changedSubject, queue: nil)
        await withGracefulShutdownHandler {
            for await message in changes { changed(org: String(decoding: message.payload, as: UTF8.self)) }
        } onGracefulShutdown: {
            changes.unsubscribe()
        }
    }
}
