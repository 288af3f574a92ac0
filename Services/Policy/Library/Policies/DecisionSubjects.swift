import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenNATS

/// What a decision needs to know of its agent besides the policy (its class, its user, the user's
/// role and attributes, whether either is disabled, the policies' current versions), kept in memory
/// so that a decision asks PostgreSQL nothing. Every change to any of it is announced on
/// `changedSubject` by the replica that made it; every policy replica then forgets the org's
/// entries (within milliseconds; `lifetime` bounds an entry should an announcement be lost).
package final class DecisionSubjects: Service, Sendable {
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

    struct State {
        var subjects: [Key: (subject: Subject, expires: ContinuousClock.Instant)] = [:]
        /// Changes seen per org: what was read before a change is not kept.
        var generations: [String: Int] = [:]
    }

    static let maximumEntries = 100_000
    let bus: (any MessageBus)?
    let lifetime: Duration
    let logger: Logger
    private let state = Mutex(State())

    package init(bus: (any MessageBus)?, lifetime: Duration = .seconds(30), logger: Logger) {
        self.bus = bus
        self.lifetime = lifetime
        self.logger = logger
    }

    /// The agent's subject: remembered, or read by `load` (and remembered unless the org changed meanwhile).
    func subject(org: String, agent: String, load: () async throws -> Subject?) async throws -> Subject? {
        let key = Key(org: org, agent: agent)
        let now = ContinuousClock.now
        let (known, generation) = state.withLock { ($0.subjects[key], $0.generations[org, default: 0]) }
        if let known, known.expires > now { return known.subject }
        guard let loaded = try await load() else { return nil }
        state.withLock { state in
            guard state.generations[org, default: 0] == generation else { return }
            if state.subjects.count >= Self.maximumEntries { state.subjects.removeAll(keepingCapacity: true) }
            state.subjects[key] = (loaded, now + lifetime)
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
