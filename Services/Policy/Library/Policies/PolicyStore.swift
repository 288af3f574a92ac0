import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenMCP
import WardenPolicyEngine
import WardenServiceKit

/// Policy documents by org (and by user, for a user's own), every applied version kept with who
/// applied it. A document is checked in full before anything is stored: a refused one leaves the
/// current policy as it was.
package struct PolicyStore: Sendable {
    let database: DatabasePool
    let principals: PrincipalStore
    let logger: Logger
    let compiled = CompiledPolicies()
    /// Agents, users and versions as decisions need them, in memory (nil: read on every decision).
    let remembered: RememberedPrincipals?

    package init(database: DatabasePool, principals: PrincipalStore, remembered: RememberedPrincipals? = nil, logger: Logger) {
        self.database = database
        self.principals = principals
        self.remembered = remembered
        self.logger = logger
    }

    package static let migration = Migration(
        version: 7,
        name: "policy_documents",
        statements: [
            """
            CREATE TABLE policy_documents (
                org text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
                owner text NOT NULL DEFAULT '',
                version int NOT NULL CHECK (version > 0),
                document text NOT NULL,
                rules int NOT NULL,
                applied_by text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (org, owner, version)
            )
            """,
            // Orgs that existed before policies keep working as they did; new orgs start with none.
            """
            INSERT INTO policy_documents (org, owner, version, document, rules, applied_by)
            SELECT id, '', 1, '\(PolicyStore.upgradeDocument)', 1, 'upgrade' FROM orgs
            """,
        ]
    )

    /// Policies came to prompts and resources after tools: orgs still on the document the upgrade
    /// gave them get one that also allows prompts and resources (as a new version), so they keep
    /// working as before.
    package static let promptsAndResources = Migration(
        version: 9,
        name: "policy_documents_prompts_resources",
        statements: [
            """
            INSERT INTO policy_documents (org, owner, version, document, rules, applied_by)
            SELECT d.org, '', d.version + 1, '\(PolicyStore.upgradeDocumentWithPrompts)', 1, 'upgrade'
            FROM policy_documents d
            WHERE d.owner = '' AND d.applied_by = 'upgrade'
              AND d.version = (SELECT max(version) FROM policy_documents m WHERE m.org = d.org AND m.owner = '')
            """
        ]
    )

    static let upgradeDocumentWithPrompts = """
        # Applied when policies arrived, so that this org kept working as before: every agent may use
        # every tool, prompt and resource its servers expose. Replace it with your own (warden policy apply).
        rules:
          - id: allow-all-before-policies
            effect: allow
            tools: ["*"]
            prompts: ["*"]
            resources: ["*"]

        """

    /// What orgs that existed before policies get: everything their servers expose, as before.
    static let upgradeDocument = """
        # Applied when policies arrived, so that this org kept working as before: every agent may use
        # every tool its servers expose. Replace it with your own (warden policy apply).
        rules:
          - id: allow-all-before-policies
            effect: allow
            tools: ["*"]

        """

    /// Checks `request.document` and, unless it is a dry run, stores it as the next version.
    package func apply(_ request: PolicyApply) async throws -> PolicyApplied {
        let scope = request.scope
        try await checkScope(scope)
        let document = try await parsed(request.document, scope: scope)
        let current = try await current(scope)
        let before = current.version == 0 ? PolicyDocument(rules: []) : try PolicyDocument(yaml: current.document)
        let (added, removed, changed) = Self.changes(from: before, to: document)
        guard !request.dryRun else {
            var effects: [PolicyApplied.AgentEffect]?
            if let tools = request.tools { effects = try await self.effects(of: document, scope: scope, tools: tools) }
            return PolicyApplied(version: current, dryRun: true, added: added, removed: removed, changed: changed, effects: effects)
        }
        let stored = try await store(request.document, rules: document.rules.count, scope: scope, actor: request.actor)
        logger.notice(
            "policy applied",
            metadata: [
                "org": "\(scope.org)", "policy.owner": "\(scope.user ?? "-")", "policy.version": "\(stored.version)", "actor": "\(request.actor)",
            ])
        return PolicyApplied(version: stored, dryRun: false, added: added, removed: removed, changed: changed)
    }

    /// Makes an earlier version's document current again, as a new version.
    package func rollback(_ request: PolicyRollback) async throws -> PolicyApplied {
        try await checkScope(request.scope)
        guard let target = try await history(request.scope).versions.first(where: { $0.version == request.version }) else {
            throw ServiceError(.notFound, "there is no version \(request.version) of this policy")
        }
        return try await apply(PolicyApply(scope: request.scope, document: target.document, dryRun: false, actor: request.actor))
    }

    package func current(_ scope: PolicyScope) async throws -> PolicyVersion {
        let rows = try await database.query(
            """
            SELECT version, document, rules, applied_by, applied_at FROM policy_documents
            WHERE org = \(scope.org) AND owner = \(scope.user ?? "") ORDER BY version DESC LIMIT 1
            """, logger: logger)
        for try await (version, document, rules, by, at) in rows.decode((Int, String, Int, String, Date).self) {
            return PolicyVersion(scope: scope, version: version, document: document, rules: rules, appliedBy: by, appliedAt: at)
        }
        return PolicyVersion(scope: scope, version: 0, document: "rules: []\n", rules: 0, appliedBy: nil, appliedAt: nil)
    }

    package func history(_ scope: PolicyScope) async throws -> PolicyHistory {
        let rows = try await database.query(
            """
            SELECT version, document, rules, applied_by, applied_at FROM policy_documents
            WHERE org = \(scope.org) AND owner = \(scope.user ?? "") ORDER BY version DESC LIMIT 1000
            """, logger: logger)
        var versions: [PolicyVersion] = []
        for try await (version, document, rules, by, at) in rows.decode((Int, String, Int, String, Date).self) {
            versions.append(PolicyVersion(scope: scope, version: version, document: document, rules: rules, appliedBy: by, appliedAt: at))
        }
        return PolicyHistory(versions: versions)
    }

    /// The engine for `org` with the org's policy and the given user's own: one query for their
    /// current versions, and the documents parsed again only when a version changed.
    package func engine(org: String, user: String) async throws -> (engine: PolicyEngine, versions: [Int]) {
        let rows = try await database.query(
            """
            SELECT owner, max(version) FROM policy_documents WHERE org = \(org) AND owner IN ('', \(user)) GROUP BY owner
            """, logger: logger)
        var versions = [0, 0]
        for try await (owner, version) in rows.decode((String, Int).self) { versions[owner.isEmpty ? 0 : 1] = version }
        return try await engine(org: org, user: user, versions: versions)
    }

    /// The engine for these versions: cached, or built from the current documents.
    func engine(org: String, user: String, versions: [Int]) async throws -> (engine: PolicyEngine, versions: [Int]) {
        let key = CompiledPolicies.Key(org: org, user: user, versions: versions)
        if let engine = compiled.engine(for: key) { return (engine, versions) }
        let admin = try await current(PolicyScope(org: org))
        let own = try await current(PolicyScope(org: org, user: user))
        // Parsing a large policy takes tens of milliseconds: on Swift's pool, never on the event loop
        // a decision may run on (it carries every statement of this service).
        let engine = try await withTaskExecutorPreference(globalConcurrentExecutor) {
            PolicyEngine(
                admin: try PolicyDocument(yaml: admin.document), users: own.version == 0 ? [:] : [user: try PolicyDocument(yaml: own.document)])
        }
        // Versions read together with the documents: a change in between is caught next time.
        compiled.store(engine, for: CompiledPolicies.Key(org: org, user: user, versions: [admin.version, own.version]))
        return (engine, [admin.version, own.version])
    }

    /// The gateway's question before a call: the same decision as `explain`, with the agent, its
    /// owner and the policies' versions read in one query, or remembered until something about
    /// them changes (`RememberedPrincipals`): a decision then costs no database round trip.
    package func decide(_ question: PolicyQuestion) async throws -> PolicyExplanation {
        guard !question.agent.hasPrefix("svc_") else { return try await explain(question) }
        let subject: RememberedPrincipals.Subject?
        if let remembered {
            subject = try await remembered.subject(org: question.org, agent: question.agent) { try await self.subject(question) }
        } else {
            subject = try await self.subject(question)
        }
        guard let subject else { throw ServiceError(.notFound, "no agent '\(question.agent.prefix(32))' in org '\(question.org.prefix(32))'") }
        guard !subject.disabled else { throw ServiceError(.forbidden, "agent '\(question.agent)' or its user is disabled") }
        let (engine, versions) = try await engine(org: question.org, user: subject.owner, versions: subject.versions)
        return try evaluate(
            question, agentClass: subject.agentClass, user: subject.owner, role: subject.role, attributes: subject.attributes, engine: engine,
            versions: versions)
    }

    /// The agent, its owner and the policies' versions, in one query; nil for an unknown agent.
    private func subject(_ question: PolicyQuestion) async throws -> RememberedPrincipals.Subject? {
        let rows = try await database.query(
            """
            SELECT a.agent_class, a.owner, a.disabled, u.role, u.disabled, u.attributes::text,
              coalesce((SELECT max(version) FROM policy_documents WHERE org = a.org AND owner = ''), 0),
              coalesce((SELECT max(version) FROM policy_documents WHERE org = a.org AND owner = a.owner), 0)
            FROM agents a JOIN users u ON u.id = a.owner WHERE a.org = \(question.org) AND a.id = \(question.agent)
            """, logger: logger)
        for try await (agentClass, owner, agentDisabled, role, ownerDisabled, attributes, adminVersion, ownVersion) in rows.decode(
            (String, String, Bool, String, Bool, String, Int, Int).self)
        {
            return RememberedPrincipals.Subject(
                agentClass: agentClass, owner: owner, disabled: agentDisabled || ownerDisabled, role: role,
                attributes: PrincipalStore.attributes(attributes) ?? [:], versions: [adminVersion, ownVersion])
        }
        return nil
    }

    /// Decides `question` with the current policies, saying how.
    package func explain(_ question: PolicyQuestion) async throws -> PolicyExplanation {
        let resolved = try await principals.resolve(AgentReference(org: question.org, agent: question.agent))
        let (engine, versions) = try await engine(org: question.org, user: resolved.owner.id)
        let attributes = try await principals.user(org: question.org, id: resolved.owner.id).attributes ?? [:]
        return try evaluate(
            question, agentClass: resolved.agent.agentClass, user: resolved.owner.id, role: resolved.owner.role, attributes: attributes,
            engine: engine, versions: versions)
    }

    private func evaluate(
        _ question: PolicyQuestion, agentClass: String, user: String, role: String, attributes: [String: String], engine: PolicyEngine,
        versions: [Int]
    ) throws -> PolicyExplanation {
        var arguments = JSONValue.object([])
        if let text = question.arguments, !text.isEmpty {
            guard let parsed = try? JSONParser().parse(Array(text.utf8)), case .object = parsed else {
                throw ServiceError(.badRequest, "the arguments must be a JSON object")
            }
            arguments = parsed
        }
        var input = DecisionInput(
            org: question.org, agent: question.agent, agentClass: agentClass, user: user, roles: Set([role] + (question.roles ?? [])),
            scopes: Set(question.scopes ?? []), client: question.client, clientAddress: question.clientAddress,
            // The user's attributes are their claims; a simulation may say others.
            claims: (question.claims ?? attributes).mapValues(JSONValue.string), claimsKnown: true, tool: question.tool,
            arguments: arguments, time: question.time ?? Date())
        guard let kind = ItemKind(rawValue: question.kind ?? "tool") else { throw ServiceError(.badRequest, "kind is tool, prompt or resource") }
        input.kind = kind
        let decision = engine.decide(input)
        var explanation = PolicyExplanation(
            decision: "deny", layers: decision.layers.map { .init(layer: $0.layer, outcome: $0.outcome, rules: $0.rules, reason: $0.reason) },
            versions: versions, dependsOnCall: decision.dependsOnCall)
        explanation.maxResultBytes = decision.maxResultBytes
        let redact = Array(Set(decision.obligations.flatMap { $0.redact.map(\.description) })).sorted()
        if !redact.isEmpty { explanation.redact = redact }
        if !decision.limits.isEmpty {
            explanation.limits = decision.limits.map { limit in
                switch limit.kind {
                case .rate(let count, let period, let burst):
                    CallLimit(id: limit.id, kind: .rate, count: count, periodSeconds: period, burst: burst, per: limit.per.map(\.rawValue))
                case .dailyQuota(let count):
                    CallLimit(id: limit.id, kind: .quota, count: count, periodSeconds: 86400, burst: count, per: limit.per.map(\.rawValue))
                }
            }
        }
        switch decision.outcome {
        case .allow: explanation.decision = "allow"
        case .deny: explanation.decision = "deny"
        case .approve(let approval):
            explanation.decision = "approve"
            explanation.approverRoles = approval.roles
            explanation.approverUsers = approval.users
            explanation.approvals = approval.count
            explanation.approvalExpiresSeconds = approval.expiresSeconds
            explanation.approvalRule = approval.rule
            explanation.approvalAllowSelf = approval.allowSelf
        }
        return explanation
    }

    /// Which agents of the org would gain or lose which of `tools` if `document` replaced the
    /// policy of `scope` (a user's own: that user's agents only).
    func effects(of document: PolicyDocument, scope: PolicyScope, tools: [String]) async throws -> [PolicyApplied.AgentEffect] {
        let roles = Dictionary(try await principals.users(org: scope.org).map { ($0.id, $0.role) }, uniquingKeysWith: { first, _ in first })
        let agents = try await principals.agents(org: scope.org).filter { !$0.disabled && (scope.user == nil || $0.owner == scope.user) }
        var effects: [PolicyApplied.AgentEffect] = []
        for agent in agents.prefix(1000) {
            let (before, _) = try await engine(org: scope.org, user: agent.owner)
            let after: PolicyEngine
            if scope.user != nil {
                after = PolicyEngine(
                    admin: try PolicyDocument(yaml: try await current(PolicyScope(org: scope.org)).document), users: [agent.owner: document])
            } else {
                let own = try await current(PolicyScope(org: scope.org, user: agent.owner))
                after = PolicyEngine(admin: document, users: own.version == 0 ? [:] : [agent.owner: try PolicyDocument(yaml: own.document)])
            }
            var input = DecisionInput(
                org: scope.org, agent: agent.id, agentClass: agent.agentClass, user: agent.owner, roles: Set([roles[agent.owner] ?? ""]), tool: "")
            var gains: [String] = []
            var loses: [String] = []
            for tool in tools {
                input.tool = tool
                switch (before.mayList(input), after.mayList(input)) {
                case (false, true): gains.append(tool)
                case (true, false): loses.append(tool)
                default: break
                }
            }
            if !gains.isEmpty || !loses.isEmpty { effects.append(.init(agent: agent.id, name: agent.name, gains: gains, loses: loses)) }
        }
        return effects
    }

    /// What the agent may call of `listing`'s tools, and on which conditions.
    package func effective(_ listing: PolicyListing) async throws -> PolicyEffective {
        let resolved = try await principals.resolve(AgentReference(org: listing.org, agent: listing.agent))
        let (engine, versions) = try await engine(org: listing.org, user: resolved.owner.id)
        var input = DecisionInput(
            org: listing.org, agent: resolved.agent.id, agentClass: resolved.agent.agentClass, user: resolved.owner.id,
            roles: [resolved.owner.role], claimsKnown: false, tool: "")
        var entries: [PolicyEffective.Entry] = []
        for tool in listing.tools.sorted() {
            input.tool = tool
            guard let found = engine.effective(input) else { continue }
            entries.append(.init(tool: tool, decision: found.decision, rules: found.rules, conditions: found.conditions))
        }
        return PolicyEffective(org: listing.org, agent: listing.agent, versions: versions, tools: entries)
    }

    /// The tools of `listing` the agent may see.
    package func visible(_ listing: PolicyListing) async throws -> PolicyListing {
        let resolved = try await principals.resolve(AgentReference(org: listing.org, agent: listing.agent))
        let (engine, _) = try await engine(org: listing.org, user: resolved.owner.id)
        var input = DecisionInput(
            org: listing.org, agent: resolved.agent.id, agentClass: resolved.agent.agentClass, user: resolved.owner.id,
            roles: [resolved.owner.role], client: listing.client, tool: "")
        guard let kind = ItemKind(rawValue: listing.kind ?? "tool") else { throw ServiceError(.badRequest, "kind is tool, prompt or resource") }
        input.kind = kind
        let visible = listing.tools.filter { tool in
            input.tool = tool
            return engine.mayList(input)
        }
        return PolicyListing(org: listing.org, agent: listing.agent, client: listing.client, tools: visible, kind: listing.kind)
    }

    // MARK: Helpers

    /// The org exists; a user's own policy belongs to a user of it.
    private func checkScope(_ scope: PolicyScope) async throws {
        let users = try await principals.users(org: scope.org)  // throws not found for an unknown org
        if let user = scope.user, !users.contains(where: { $0.id == user }) {
            throw ServiceError(.notFound, "no user '\(user.prefix(32))' in org '\(scope.org.prefix(32))'")
        }
    }

    /// The document, checked; a user's own may only narrow: user-layer rules about that user's agents.
    private func parsed(_ text: String, scope: PolicyScope) async throws -> PolicyDocument {
        let document: PolicyDocument
        do { document = try PolicyDocument(yaml: text) } catch { throw ServiceError(.badRequest, "the policy is refused: \(error)") }
        // What the gateway cannot enforce yet is refused rather than silently ignored.
        for rule in document.rules {
            func refuse(_ what: String) -> ServiceError {
                ServiceError(.badRequest, "the policy is refused: line \(rule.line), rule '\(rule.id)': \(what) are not enforced by this version yet")
            }
        }
        if scope.user != nil, let limit = document.limits.first {
            throw ServiceError(
                .badRequest, "the policy is refused: line \(limit.line), limit '\(limit.id)': limits are set by the org's admins, in the org's policy"
            )
        }
        if let user = scope.user {
            let own = Set(try await principals.agents(org: scope.org).filter { $0.owner == user }.map(\.id))
            for rule in document.rules {
                guard rule.layer == .user else {
                    throw ServiceError(
                        .badRequest,
                        "the policy is refused: line \(rule.line), rule '\(rule.id)': a user's own policy has user-layer rules only (layer: user)")
                }
                guard rule.effect != .approve else {
                    throw ServiceError(
                        .badRequest, "the policy is refused: line \(rule.line), rule '\(rule.id)': a user's own policy allows or denies")
                }
                guard rule.subjects.classes.isEmpty, rule.subjects.users.isEmpty, rule.subjects.roles.isEmpty,
                    rule.subjects.agents.isSubset(of: own)
                else {
                    throw ServiceError(
                        .badRequest,
                        "the policy is refused: line \(rule.line), rule '\(rule.id)': a user's own rules name only their own agents (ids) or clients")
                }
            }
        } else if let rule = document.rules.first(where: { $0.layer == .user }) {
            throw ServiceError(
                .badRequest, "the policy is refused: line \(rule.line), rule '\(rule.id)': user-layer rules go in a user's own policy (--user)")
        }
        return document
    }

    private func store(_ text: String, rules: Int, scope: PolicyScope, actor: String) async throws -> PolicyVersion {
        // Two applies at once: one takes the next version, the other retries on the key conflict.
        for _ in 0..<5 {
            do {
                let rows = try await database.query(
                    """
                    INSERT INTO policy_documents (org, owner, version, document, rules, applied_by)
                    SELECT \(scope.org), \(scope.user ?? ""), coalesce(max(version), 0) + 1, \(text), \(rules), \(actor)
                    FROM policy_documents WHERE org = \(scope.org) AND owner = \(scope.user ?? "")
                    RETURNING version, applied_at
                    """, logger: logger)
                for try await (version, at) in rows.decode((Int, Date).self) {
                    return PolicyVersion(scope: scope, version: version, document: text, rules: rules, appliedBy: actor, appliedAt: at)
                }
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                continue
            }
        }
        throw ServiceError(.conflict, "the policy is being changed by someone else; try again")
    }

    /// Rules added, removed and changed, by id.
    static func changes(from before: PolicyDocument, to after: PolicyDocument) -> (added: [String], removed: [String], changed: [String]) {
        let old = Dictionary(before.rules.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let new = Dictionary(after.rules.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let added = after.rules.map(\.id).filter { old[$0] == nil }
        let removed = before.rules.map(\.id).filter { new[$0] == nil }
        let changed = after.rules.filter { rule in old[rule.id].map { !$0.sameMeaning(as: rule) } ?? false }.map(\.id)
        return (added, removed, changed)
    }
}

extension PolicyRule {
    /// Equal but for where the rule stands in its document.
    func sameMeaning(as other: PolicyRule) -> Bool {
        var a = self
        var b = other
        a.line = 0
        b.line = 0
        return a == b
    }
}
