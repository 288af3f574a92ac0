import Foundation
import Logging
import Synchronization
import Testing
import WardenContracts
import WardenNATS

@testable import WardenPolicy

/// What a policy replica remembers of agents, without PostgreSQL: a change forgets the org's
/// entries; nothing is used while NATS is down, or once it has been lost since the entry was read
/// (announcements of changes may have been missed meanwhile).
@Suite struct RememberedPrincipalsTests {
    let agent = ResolvedAgent(
        agent: Agent(id: "agt_1", org: "acme", name: "a", agentClass: "assistant", owner: "usr_1", disabled: false),
        owner: User(id: "usr_1", org: "acme", email: "ada@acme.example", role: "owner", disabled: false),
        org: Org(id: "acme", name: "Acme", maxTokenLifetime: 3600))

    @Test func resolutionsAreReadAgainAfterAChangeAnOutageOrWhileDisconnected() async throws {
        let bus = InMemoryMessageBus()
        let remembered = RememberedPrincipals(bus: bus, logger: Logger(label: "test"))
        let reads = Atomic<Int>(0)
        let reference = AgentReference(org: "acme", agent: "agt_1")
        @Sendable func resolve() async throws -> ResolvedAgent {
            try await remembered.resolved(reference) {
                reads.add(1, ordering: .relaxed)
                return agent
            }
        }
        _ = try await resolve()
        _ = try await resolve()
        #expect(reads.load(ordering: .relaxed) == 1, "remembered")
        remembered.changed(org: "globex")
        _ = try await resolve()
        #expect(reads.load(ordering: .relaxed) == 1, "another org's change")
        remembered.changed(org: "acme")
        _ = try await resolve()
        #expect(reads.load(ordering: .relaxed) == 2, "the org changed")

        bus.setConnected(false)
        _ = try await resolve()
        _ = try await resolve()
        #expect(reads.load(ordering: .relaxed) == 4, "while disconnected every resolution is read")
        bus.setConnected(true)
        _ = try await resolve()
        #expect(reads.load(ordering: .relaxed) == 5, "what was remembered before the outage is not used")
        _ = try await resolve()
        #expect(reads.load(ordering: .relaxed) == 5, "remembered again once connected")

        // A disabled (or unknown) agent is refused by the read, and never remembered.
        remembered.changed(org: "acme")
        for _ in 0..<2 {
            await #expect(throws: ServiceError.self) {
                try await remembered.resolved(reference) {
                    reads.add(1, ordering: .relaxed)
                    throw ServiceError(.forbidden, "agent 'agt_1' is disabled")
                }
            }
        }
        #expect(reads.load(ordering: .relaxed) == 7)
    }

    /// What one replica changes, another forgets when the announcement arrives.
    @Test func anotherReplicasChangeIsForgottenWhenAnnounced() async throws {
        let bus = InMemoryMessageBus()
        let here = RememberedPrincipals(bus: bus, resolutionLifetime: .seconds(300), logger: Logger(label: "test"))
        let there = RememberedPrincipals(bus: bus, logger: Logger(label: "test"))
        let reads = Atomic<Int>(0)
        @Sendable func resolve() async throws {
            _ = try await here.resolved(AgentReference(org: "acme", agent: "agt_1")) {
                reads.add(1, ordering: .relaxed)
                return agent
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await here.run() }
            defer { group.cancelAll() }
            try await resolve()
            try await resolve()
            #expect(reads.load(ordering: .relaxed) == 1)
            // Announced again until heard: the other replica may not have subscribed yet.
            var forgotten = false
            for _ in 0..<200 where !forgotten {
                there.changed(org: "acme")
                try await Task.sleep(for: .milliseconds(5))
                try await resolve()
                forgotten = reads.load(ordering: .relaxed) >= 2
            }
            #expect(forgotten, "the announcement reached the other replica")
        }
    }

    @Test func resolutionsExpire() async throws {
        let remembered = RememberedPrincipals(bus: InMemoryMessageBus(), resolutionLifetime: .milliseconds(1), logger: Logger(label: "test"))
        let reads = Atomic<Int>(0)
        for _ in 0..<2 {
            _ = try await remembered.resolved(AgentReference(org: "acme", agent: "agt_1")) {
                reads.add(1, ordering: .relaxed)
                return agent
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(reads.load(ordering: .relaxed) == 2)
    }
}
