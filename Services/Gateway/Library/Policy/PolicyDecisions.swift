import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenMCP
import WardenNATS
import WardenPolicyEngine
import WardenServiceKit

/// Asks the policy service about calls and listings, and remembers what does not depend on the call
/// (a decision made on the tool and the agent alone, a listing) until the policy changes: a change
/// announced on `warden.broadcast.policy` drops the org's entries on every replica at once (and
/// `lifetime` bounds them anyway). Nothing is decided here: a policy service that does not answer
/// within `timeout` makes the call fail (fail closed).
package final class PolicyDecisions: Service, Sendable {
    struct DecisionKey: Hashable {
        var org: String
        var agent: String
        var client: String?
        var kind: ItemKind
        var tool: String
    }

    struct ListingKey: Hashable {
        var org: String
        var agent: String
        var client: String?
        var kind: ItemKind
        var tools: [String]
    }

    struct Cache {
        var decisions: [DecisionKey: (verdict: PolicyVerdict, expires: ContinuousClock.Instant)] = [:]
        var listings: [ListingKey: (visible: Set<String>, expires: ContinuousClock.Instant)] = [:]
        /// Changes seen per org: an answer asked for before a change is not kept.
        var generations: [String: Int] = [:]
        /// Until when nothing of an org is kept after a change: a policy replica that has not yet
        /// heard of the change may still answer with what it knew before.
        var settling: [String: ContinuousClock.Instant] = [:]

        func keeps(_ org: String, generation: Int, now: ContinuousClock.Instant) -> Bool {
            generations[org, default: 0] == generation && settling[org].map { now >= $0 } ?? true
        }
    }

    /// How long after a change nothing of the org is cached (policy replicas hear of a change within
    /// milliseconds; this is the margin).
    static let settlingTime = Duration.seconds(2)

    /// Entries kept of each kind; past it the cache starts again.
    static let maximumEntries = 50_000

    let client: ServiceClient
    let bus: (any MessageBus)?
    let timeout: Duration
    let lifetime: Duration
    let logger: Logger
    private let cache = Mutex(Cache())
    private let listeners = Mutex<[@Sendable (PolicyChanged) -> Void]>([])

    package init(client: ServiceClient, bus: (any MessageBus)?, timeout: Duration = .seconds(2), lifetime: Duration = .seconds(60), logger: Logger) {
        self.client = client
        self.bus = bus
        self.timeout = timeout
        self.lifetime = lifetime
        self.logger = logger
    }

    /// `WARDEN_POLICY_TIMEOUT_MS`: how long a call waits for a decision (default 2000).
    package static func timeout(_ environment: [String: String]) throws(ConfigurationError) -> Duration {
        .milliseconds(
            try ServiceConfiguration.number(
                environment, "WARDEN_POLICY_TIMEOUT_MS", key: "policy.timeout.ms", range: 10...60_000, unit: "milliseconds", default: 2000))
    }

    /// Called with every change announced, after the cache dropped the org's entries.
    package func onChange(_ listener: @escaping @Sendable (PolicyChanged) -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    package func decide(
        agent: AuthenticatedAgent, kind: ItemKind = .tool, tool: String, arguments: JSONValue?, clientAddress: String?,
        client clientID: String? = nil
    ) async -> PolicyVerdict {
        let key = DecisionKey(org: agent.org, agent: agent.agent, client: clientID, kind: kind, tool: tool)
        let now = ContinuousClock.now
        let (cached, generation) = cache.withLock { ($0.decisions[key], $0.generations[agent.org, default: 0]) }
        if let cached, cached.expires > now { return cached.verdict }
        let question = PolicyQuestion(
            org: agent.org, agent: agent.agent, tool: tool, arguments: arguments.map { String(decoding: $0.serialized(), as: UTF8.self) },
            clientAddress: clientAddress, client: clientID, roles: agent.roles, scopes: agent.scopes.sorted(), kind: kind.question)
        let explanation: PolicyExplanation
        do {
            explanation = try await client.call(PolicyEndpoints.decide, question, timeout: timeout)
        } catch {
            switch error.code {
            case .notFound, .forbidden: return .deny  // the agent or its org is gone, or disabled
            default:
                logger.warning("no policy decision; the call is refused", metadata: ["error": "\(error)"])
                return .unavailable(error.message)
            }
        }
        let verdict: PolicyVerdict =
            switch explanation.decision {
            case "allow", "approve":
                .allow(
                    PolicyObligations(
                        limits: explanation.limits ?? [], maxResultBytes: explanation.maxResultBytes,
                        // A path the gateway cannot read redacts everything (never less than asked).
                        redact: (explanation.redact ?? []).map { (try? JSONPath($0)) ?? JSONPath.root },
                        approval: explanation.decision == "approve"
                            ? ApprovalRequirement(
                                roles: explanation.approverRoles ?? [], users: explanation.approverUsers ?? [], count: explanation.approvals ?? 1,
                                expiresSeconds: explanation.approvalExpiresSeconds ?? 3600, rule: explanation.approvalRule ?? "",
                                allowSelf: explanation.approvalAllowSelf ?? false) : nil))
            default: .deny
            }
        if !explanation.dependsOnCall {
            cache.withLock { cache in
                guard cache.keeps(agent.org, generation: generation, now: .now) else { return }
                // Bounded: names an agent makes up must not grow the gateway without end.
                if cache.decisions.count >= Self.maximumEntries { cache.decisions.removeAll(keepingCapacity: true) }
                cache.decisions[key] = (verdict, now + lifetime)
            }
        }
        return verdict
    }

    /// The items among `tools` (tools, prompts or resources, by `kind`) that `agent` may see; nil
    /// when the policy service did not answer.
    package func visible(
        agent: AuthenticatedAgent, kind: ItemKind = .tool, tools: [String], client clientID: String? = nil
    ) async -> Set<String>? {
        let key = ListingKey(org: agent.org, agent: agent.agent, client: clientID, kind: kind, tools: tools)
        let now = ContinuousClock.now
        let (cached, generation) = cache.withLock { ($0.listings[key], $0.generations[agent.org, default: 0]) }
        if let cached, cached.expires > now { return cached.visible }
        let answer: PolicyListing
        do {
            answer = try await client.call(
                PolicyEndpoints.visible, PolicyListing(org: agent.org, agent: agent.agent, client: clientID, tools: tools, kind: kind.question),
                timeout: timeout)
        } catch {
            if error.code == .notFound || error.code == .forbidden { return [] }
            logger.warning("no policy for a listing; it is refused", metadata: ["error": "\(error)"])
            return nil
        }
        let visible = Set(answer.tools)
        cache.withLock { cache in
            guard cache.keeps(agent.org, generation: generation, now: .now) else { return }
            if cache.listings.count >= Self.maximumEntries { cache.listings.removeAll(keepingCapacity: true) }
            cache.listings[key] = (visible, now + lifetime)
        }
        return visible
    }

    /// Drops what a change makes stale and tells the listeners.
    package func changed(_ change: PolicyChanged) {
        let org = change.scope.org
        cache.withLock { cache in
            cache.generations[org, default: 0] += 1
            cache.settling[org] = .now + Self.settlingTime
            cache.decisions = cache.decisions.filter { $0.key.org != org }
            cache.listings = cache.listings.filter { $0.key.org != org }
        }
        for listener in listeners.withLock({ $0 }) { listener(change) }
    }

    package func run() async throws {
        guard let bus else { return try await gracefulShutdown() }
        let changes = try bus.subscribe(PolicyEndpoints.changedSubject, queue: nil)
        await withGracefulShutdownHandler {
            for await message in changes {
                guard let change = try? EnvelopeCoding.decoder().decode(PolicyChanged.self, from: message.payload) else {
                    logger.warning("ignoring a malformed policy change announcement")
                    continue
                }
                changed(change)
            }
        } onGracefulShutdown: {
            changes.unsubscribe()
        }
    }
}
