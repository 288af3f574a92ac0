import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenNATS
import WardenServiceKit

/// What decisions and token checks need to know of an agent, kept in memory so that neither asks
/// PostgreSQL anything: for a decision, the agent's subject (its class, its user, the user's role and
/// attributes, whether either is disabled, the policies' current versions); for a token, the agent
/// resolved with its user and org (`agents.resolve`: every token issued, refreshed or exchanged).
/// Every change to any of it is announced on `changedSubject` by the replica that made it; every
/// policy replica then forgets the org's entries (within milliseconds). An announcement can be lost
/// (NATS down on either side), so nothing is used while this replica's NATS connection is down or
/// if it was read before the connection was last lost, and entries expire anyway: decisions' after
/// `lifetime`, resolutions (tokens are issued on them, and a token outlives its check) after
/// `resolutionLifetime`. A disabled or unknown agent is never remembered as resolved: resolving it
/// throws, and the next attempt reads again.
package final class RememberedPrincipals: Service, Sendable {
    package static let changedSubject = "warden.policy.changed"

    package struct Subject: Sendable, Equatable {
        var agentClass: String
        var owner: String
        var disabled: Bool
        var role: String
        var attributes: [String: String]
        var versions: [Int]
    }

    struct Key: Hashable {
        var org: String
        var agent: String
    }

    struct Remembered<Value> {
        var value: Value
        var expires: ContinuousClock.Instant
        /// The bus's outages when it was read: one since means announcements may have been missed.
        var outages: UInt64
    }

    struct State {
        var subjects: [Key: Remembered<Subject>] = [:]
        var resolved: [Key: Remembered<ResolvedAgent>] = [:]
        /// Changes seen per org: what was read before a change is not kept.
        var generations: [String: Int] = [:]
    }

    static let maximumEntries = 100_000
    let bus: (any MessageBus)?
    let lifetime: Duration
    let resolutionLifetime: Duration
    let logger: Logger
    private let state = Mutex(State())

    package init(bus: (any MessageBus)?, lifetime: Duration = .seconds(30), resolutionLifetime: Duration = .seconds(5), logger: Logger) {
        self.bus = bus
        self.lifetime = lifetime
        self.resolutionLifetime = resolutionLifetime
        self.logger = logger
    }

    /// `WARDEN_POLICY_RESOLUTION_CACHE_SECONDS`: 0 to 300 (0: every token's check reads PostgreSQL).
    package static func resolutionLifetime(_ environment: [String: String]) throws(ConfigurationError) -> Duration {
        .seconds(
            try ServiceConfiguration.number(
                environment, "WARDEN_POLICY_RESOLUTION_CACHE_SECONDS", key: "policy.resolution.cache.seconds", range: 0...300, unit: "seconds",
                default: 5))
    }

    /// The agent's subject: remembered, or read by `load` (and remembered unless the org changed meanwhile).
    func subject(org: String, agent: String, load: () async throws -> Subject?) async throws -> Subject? {
        try await remembered(\.subjects, Key(org: org, agent: agent), lifetime: lifetime, load: load)
    }

    /// The agent resolved with its user and org: remembered, or read by `load`, which throws for a
    /// disabled or unknown agent (nothing is remembered then).
    func resolved(_ reference: AgentReference, load: () async throws -> ResolvedAgent) async throws -> ResolvedAgent {
        let key = Key(org: reference.org, agent: reference.agent)
        let resolved = try await remembered(\.resolved, key, lifetime: resolutionLifetime) { () async throws -> ResolvedAgent? in
            try await load()
        }
        guard let resolved else { throw ServiceError(.notFound, "no agent '\(reference.agent.prefix(32))' in org '\(reference.org.prefix(32))'") }
        return resolved
    }

    private func remembered<Value: Sendable>(
        _ table: any WritableKeyPath<State, [Key: Remembered<Value>]> & Sendable, _ key: Key, lifetime: Duration,
        load: () async throws -> Value?
    ) async throws -> Value? {
        let now = ContinuousClock.now
        let outages = bus?.outages ?? 0
        let listening = bus?.isConnected ?? true
        let (known, generation) = state.withLock { ($0[keyPath: table][key], $0.generations[key.org, default: 0]) }
        if listening, let known, known.expires > now, known.outages == outages { return known.value }
        guard let loaded = try await load() else { return nil }
        guard listening else { return loaded }
        state.withLock { state in
            guard state.generations[key.org, default: 0] == generation else { return }
            if state[keyPath: table].count >= Self.maximumEntries { state[keyPath: table].removeAll(keepingCapacity: true) }
            state[keyPath: table][key] = Remembered(value: loaded, expires: now + lifetime, outages: outages)
        }
        return loaded
    }

    /// Something about the org's principals or policies changed here: forget it, and tell the others.
    package func changed(org: String) {
        forget(org: org)
        do { try bus?.publish(Self.changedSubject, payload: Data(org.utf8)) } catch {
            logger.warning("cannot announce a change to the other policy replicas", metadata: ["org": "\(org)", "error": "\(error)"])
        }
    }

    func forget(org: String) {
        state.withLock { state in
            state.generations[org, default: 0] += 1
            state.subjects = state.subjects.filter { $0.key.org != org }
            state.resolved = state.resolved.filter { $0.key.org != org }
        }
    }

    package func run() async throws {
        guard let bus else { return try await gracefulShutdown() }
        let changes = try bus.subscribe(Self.changedSubject, queue: nil)
        await withGracefulShutdownHandler {
            for await message in changes { forget(org: String(decoding: message.payload, as: UTF8.self)) }
        } onGracefulShutdown: {
            changes.unsubscribe()
        }
    }
}
