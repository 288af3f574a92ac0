import WardenMCP

/// One rule of a policy: who, which tools, under which conditions, and the outcome.
package struct PolicyRule: Sendable, Equatable {
    package enum Layer: String, Sendable, Equatable, CaseIterable {
        /// Grants and denials by the org's admins.
        case admin
        /// A user narrowing what their own agents may use.
        case user
    }

    package enum Effect: String, Sendable, Equatable {
        case allow
        case deny
        /// Allowed once a person approves the call.
        case approve
    }

    /// Whom a rule is about: any of these matches (none given: every agent of the org).
    package struct Subjects: Sendable, Equatable {
        package var agents: Set<String> = []
        package var classes: Set<String> = []
        package var users: Set<String> = []
        package var roles: Set<String> = []
        /// The OAuth client or API key the agent connected with (user rules, per client application).
        package var clients: Set<String> = []

        var isEmpty: Bool { agents.isEmpty && classes.isEmpty && users.isEmpty && roles.isEmpty && clients.isEmpty }

        /// Whether the rule is about this caller; an unknown client counts for a deny rule only.
        func match(_ input: DecisionInput, denying: Bool) -> Bool {
            isEmpty || agents.contains(input.agent) || classes.contains(input.agentClass) || users.contains(input.user)
                || !roles.isDisjoint(with: input.roles) || (input.client.map(clients.contains) ?? (denying && !clients.isEmpty))
        }
    }

    /// Who must approve a call under an `approve` rule.
    package struct Approval: Sendable, Equatable {
        package var roles: [String]
        package var users: [String]
        package var count: Int
        package var expiresSeconds: Int
        /// Whether the user an agent acts for may approve that agent's calls (off by default).
        package var allowSelf = false
        /// The rule that requires it (set once the rule is read).
        package var rule = ""
    }

    /// What an allowed call must also honour.
    package struct Obligations: Sendable, Equatable {
        package var rateLimit: String?
        package var redact: [JSONPath] = []
        package var maxResultBytes: Int?

        package var isEmpty: Bool { rateLimit == nil && redact.isEmpty && maxResultBytes == nil }
    }

    package var id: String
    package var layer: Layer
    package var effect: Effect
    package var subjects: Subjects
    package var tools: [ToolPattern]
    /// Prompts (namespaced like tools) and resources (`server+uri`, matched whole) the rule is about.
    package var prompts: [ToolPattern] = []
    package var resources: [ToolPattern] = []
    package var conditions: [RuleCondition]
    package var approval: Approval?
    package var obligations: Obligations
    /// Where the rule is in its document, for explanations.
    package var line: Int

    func applies(to input: DecisionInput, name: ToolName) -> Bool {
        subjects.match(input, denying: effect == .deny) && patterns(input.kind).contains { $0.matches(name) }
    }

    func patterns(_ kind: ItemKind) -> [ToolPattern] {
        switch kind {
        case .tool: tools
        case .prompt: prompts
        case .resource: resources
        }
    }

    /// Whether every condition holds (read the safe way for this rule's effect).
    func holds(_ input: DecisionInput) -> Bool {
        conditions.allSatisfy { $0.holds(input, denying: effect == .deny) }
    }
}
