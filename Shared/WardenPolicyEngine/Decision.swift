/// What the policy says about one call, and why.
package struct Decision: Sendable, Equatable {
    package enum Outcome: Sendable, Equatable {
        case allow
        case deny
        /// Allowed once people approve it.
        case approve(PolicyRule.Approval)
    }

    /// How one layer voted, and the rules that made it.
    package struct LayerVote: Sendable, Equatable {
        package var layer: String
        package var outcome: String
        package var rules: [String]
        package var reason: String
    }

    package var outcome: Outcome
    package var layers: [LayerVote]
    /// The rules that allowed it (their obligations apply).
    package var obligations: [PolicyRule.Obligations]
    /// The decision read the call's arguments, time or address: it holds for this call only.
    package var dependsOnCall: Bool
    /// The limits the call counts against (allowed calls only).
    package var limits: [RateLimit] = []
    /// The largest result the call may return (the smallest any granting rule sets).
    package var maxResultBytes: Int? { obligations.compactMap(\.maxResultBytes).min() }

    /// One sentence for the caller: never names a rule the caller could use to probe the policy.
    package var reason: String {
        switch outcome {
        case .allow: "allowed"
        case .approve: "needs approval"
        case .deny: layers.first { $0.outcome == "deny" }?.reason ?? "denied"
        }
    }
}
