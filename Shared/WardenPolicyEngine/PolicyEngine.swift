/// Decides calls with an org's policy: the admin layer (the org's document) and the user layer
/// (each user's own document, which applies only to that user's agents). The server layer, what
/// each server exposes at all, is the gateway's and comes first.
///
/// Every layer must allow: an explicit deny in any layer wins; in the admin layer, nothing allows
/// unless a rule does (deny by default); in the user layer, a user who lists what their agents may
/// use (`allow` rules naming them) narrows them to it, and a user who wrote nothing narrows nothing.
/// An `approve` rule turns an allowed call into one that waits for people.
package struct PolicyEngine: Sendable {
    let admin: [PolicyRule]
    let users: [String: [PolicyRule]]
    /// The admin rules that name tools without wildcards, by name (a rule with a namespaced name
    /// under it, one with a tool's own name under that).
    let byName: [String: [Int]]
    /// The admin rules with wildcards, by whom they are about (`class:researcher`, `role:admin`,
    /// `agent:…`, `user:…`), and those about everyone (or a client): a decision looks at the rules
    /// about its caller and its tool only, whatever the policy's size.
    let bySubject: [String: [Int]]
    /// The wildcard rules about everyone (or a client) whose patterns need no literal (`*`), and the
    /// others by the literal each pattern needs: a decision tests those its tool's name contains.
    let aboutEveryone: [Int]
    let aboutEveryoneByLiteral: LiteralIndex
    /// The admin rules about prompts and about resources (few: looked at whole).
    let aboutPrompts: [Int]
    let aboutResources: [Int]
    let limits: [RateLimit]

    /// - Parameters:
    ///   - admin: the org's document.
    ///   - users: each user's own document, by user id.
    package init(admin: PolicyDocument, users: [String: PolicyDocument] = [:]) {
        self.admin = admin.rules.filter { $0.layer == .admin }
        self.users = users.mapValues { $0.rules }
        self.limits = admin.limits
        var byName: [String: [Int]] = [:]
        var bySubject: [String: [Int]] = [:]
        var aboutEveryone: [Int] = []
        var byLiteral: [(literal: [UInt8], value: Int)] = []
        for (index, rule) in self.admin.enumerated() where !rule.tools.isEmpty {
            if rule.tools.allSatisfy(\.isLiteral) {
                for tool in Set(rule.tools.map(\.description)) { byName[tool, default: []].append(index) }
            } else if rule.subjects.isEmpty || !rule.subjects.clients.isEmpty {
                let literals = rule.tools.map(\.requiredLiteral)
                if literals.contains(where: \.isEmpty) {
                    aboutEveryone.append(index)
                } else {
                    byLiteral += Set(literals).map { ($0, index) }
                }
            } else {
                let keys =
                    rule.subjects.classes.map { "class:\($0)" } + rule.subjects.roles.map { "role:\($0)" }
                    + rule.subjects.agents.map { "agent:\($0)" } + rule.subjects.users.map { "user:\($0)" }
                for key in keys { bySubject[key, default: []].append(index) }
            }
        }
        self.byName = byName
        self.bySubject = bySubject
        self.aboutEveryone = aboutEveryone
        aboutEveryoneByLiteral = LiteralIndex(byLiteral)
        let rules = self.admin
        aboutPrompts = rules.indices.filter { !rules[$0].prompts.isEmpty }
        aboutResources = rules.indices.filter { !rules[$0].resources.isEmpty }
    }

    /// The admin rules about `input`'s caller and tool, in document order.
    func adminRules(_ input: DecisionInput, _ name: ToolName) -> [PolicyRule] {
        switch input.kind {
        case .tool: break
        case .prompt: return aboutPrompts.map { admin[$0] }.filter { $0.applies(to: input, name: name) }
        case .resource: return aboutResources.map { admin[$0] }.filter { $0.applies(to: input, name: name) }
        }
        var indices = aboutEveryone
        aboutEveryoneByLiteral.values(in: name.full, into: &indices)
        indices += byName[name.text] ?? []
        if name.ownText != name.text { indices += byName[name.ownText] ?? [] }
        indices += bySubject["class:\(input.agentClass)"] ?? []
        indices += bySubject["agent:\(input.agent)"] ?? []
        indices += bySubject["user:\(input.user)"] ?? []
        for role in input.roles { indices += bySubject["role:\(role)"] ?? [] }
        if indices.count != aboutEveryone.count {
            // In document order, each rule once (a rule may be found under several keys).
            indices = Array(Set(indices)).sorted()
        }
        var rules: [PolicyRule] = []
        for index in indices where admin[index].applies(to: input, name: name) { rules.append(admin[index]) }
        return rules
    }

    package func decide(_ input: DecisionInput) -> Decision {
        var dependsOnCall = false
        var votes: [Decision.LayerVote] = []
        let name = ToolName(input.tool)

        // Admin layer.
        let adminRules = adminRules(input, name)
        dependsOnCall = dependsOnCall || adminRules.contains { $0.conditions.contains(where: \.dependsOnCall) }
        let adminHeld = adminRules.filter { $0.holds(input) }
        let adminVote: Decision.LayerVote
        var approval: PolicyRule.Approval?
        var obligations: [PolicyRule.Obligations] = []
        if let deny = adminHeld.first(where: { $0.effect == .deny }) {
            adminVote = .init(layer: "admin", outcome: "deny", rules: [deny.id], reason: "denied by policy")
        } else if !adminHeld.filter({ $0.effect != .deny }).isEmpty {
            let granting = adminHeld.filter { $0.effect != .deny }
            approval = granting.first { $0.effect == .approve }?.approval
            obligations = granting.map(\.obligations).filter { !$0.isEmpty }
            adminVote = .init(layer: "admin", outcome: approval == nil ? "allow" : "approve", rules: granting.map(\.id), reason: "allowed")
        } else {
            let unmet = adminRules.filter { $0.effect != .deny }.compactMap { rule in
                rule.conditions.first { !$0.holds(input, denying: false) }.map { "\(rule.id): \($0)" }
            }
            adminVote = .init(
                layer: "admin", outcome: "deny", rules: [],
                reason: unmet.isEmpty ? "no rule allows this tool for this agent" : "no rule allows it: \(unmet.joined(separator: "; ")) did not hold"
            )
        }
        votes.append(adminVote)

        // User layer: the acting user's own rules about this agent.
        let ownRules = (users[input.user] ?? []).filter { $0.subjects.match(input, denying: $0.effect == .deny) }
        if !ownRules.isEmpty {
            let applying = ownRules.filter { $0.patterns(input.kind).contains { $0.matches(name) } }
            dependsOnCall = dependsOnCall || applying.contains { $0.conditions.contains(where: \.dependsOnCall) }
            let held = applying.filter { $0.holds(input) }
            if let deny = held.first(where: { $0.effect == .deny }) {
                votes.append(.init(layer: "user", outcome: "deny", rules: [deny.id], reason: "denied by the user's own policy"))
            } else if ownRules.contains(where: { $0.effect != .deny }), !held.contains(where: { $0.effect != .deny }) {
                votes.append(.init(layer: "user", outcome: "deny", rules: [], reason: "the user's own policy does not list this tool"))
            } else {
                if approval == nil { approval = held.first { $0.effect == .approve }?.approval }
                votes.append(.init(layer: "user", outcome: "allow", rules: held.map(\.id), reason: "allowed"))
            }
        } else {
            votes.append(.init(layer: "user", outcome: "allow", rules: [], reason: "the user narrows nothing"))
        }

        let denied = votes.contains { $0.outcome == "deny" }
        let outcome: Decision.Outcome = denied ? .deny : approval.map { .approve($0) } ?? .allow
        guard !denied else { return Decision(outcome: outcome, layers: votes, obligations: [], dependsOnCall: dependsOnCall) }
        let named = Set(obligations.compactMap(\.rateLimit))
        // Limits count tool calls (reading a prompt or a resource counts against none).
        let counted = input.kind == .tool ? limits.filter { named.contains($0.id) || $0.selects(input, name: name) } : []
        return Decision(outcome: outcome, layers: votes, obligations: obligations, dependsOnCall: dependsOnCall, limits: counted)
    }

    /// Whether a listing shows the tool to this agent: some rule could allow it (its conditions
    /// aside) and no rule denies it whatever the call.
    package func mayList(_ input: DecisionInput) -> Bool {
        let name = ToolName(input.tool)
        let adminRules = adminRules(input, name)
        let unconditionalDeny = { (rules: [PolicyRule]) in rules.contains { $0.effect == .deny && $0.conditions.isEmpty } }
        guard adminRules.contains(where: { $0.effect != .deny }), !unconditionalDeny(adminRules) else { return false }
        let ownRules = (users[input.user] ?? []).filter { $0.subjects.match(input, denying: $0.effect == .deny) }
        guard !ownRules.isEmpty else { return true }
        let applying = ownRules.filter { $0.patterns(input.kind).contains { $0.matches(name) } }
        if unconditionalDeny(applying) { return false }
        return !ownRules.contains(where: { $0.effect != .deny }) || applying.contains(where: { $0.effect != .deny })
    }

    /// What the agent may do with `input.tool` whatever the call: nil when it may not use it at
    /// all; else whether always (`allow`), on conditions (`conditional`, with them) or after
    /// approval, and the granting rules.
    package func effective(_ input: DecisionInput) -> (decision: String, rules: [String], conditions: [String])? {
        guard mayList(input) else { return nil }
        let name = ToolName(input.tool)
        let granting = adminRules(input, name).filter { $0.effect != .deny }
        let conditions = granting.flatMap { rule in rule.conditions.map { "\(rule.id): \($0)" } }
        let denyConditions = adminRules(input, name).filter { $0.effect == .deny }.flatMap { rule in
            rule.conditions.map { "unless \(rule.id): \($0)" }
        }
        if granting.contains(where: { $0.effect == .approve }) { return ("approve", granting.map(\.id), conditions + denyConditions) }
        let always = granting.contains { $0.conditions.isEmpty } && denyConditions.isEmpty
        return (always ? "allow" : "conditional", granting.map(\.id), always ? [] : conditions + denyConditions)
    }
}
