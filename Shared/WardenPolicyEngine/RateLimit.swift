/// A limit on calls, set by admins in the org's policy (`limits:`): a token bucket (`rate` calls a
/// period, `burst` at once) or a quota (`quota` calls a UTC day), counted per agent, user, org or
/// tool (any combination). Counting happens in the gateway, shared by every replica.
///
/// ```yaml
/// limits:
///   - id: search-rate
///     rate: 30/minute            # refills 30 a minute; burst defaults to 30
///     burst: 10
///     per: [agent, tool]         # agent | user | org | tool (default: agent)
///     agents: {classes: [researcher]}
///     tools: ["*search*"]
///   - id: daily
///     quota: 1000/day
///     per: [user]
/// ```
///
/// A limit counts the calls its `agents` and `tools` select (each defaults to all). A limit that
/// selects neither and that rules name (`obligations: {rateLimit: ID}`) counts only those rules'
/// calls.
package struct RateLimit: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        /// A token bucket: `count` calls per `periodSeconds`, up to `burst` at once.
        case rate(count: Int, periodSeconds: Int, burst: Int)
        /// At most `count` calls each UTC day.
        case dailyQuota(count: Int)
    }

    package enum Dimension: String, Sendable, Equatable, CaseIterable, Comparable {
        case agent, user, org, tool
        package static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    package var id: String
    package var kind: Kind
    package var per: [Dimension]
    package var subjects: PolicyRule.Subjects
    /// Empty: every tool.
    package var tools: [ToolPattern]
    /// Counts only the calls of rules naming it (it selects neither agents nor tools, and rules name it).
    package var onlyWhenNamed: Bool
    package var line: Int

    /// Whether the limit counts this call by its own selectors.
    func selects(_ input: DecisionInput, name: ToolName) -> Bool {
        !onlyWhenNamed && subjects.match(input, denying: false) && (tools.isEmpty || tools.contains { $0.matches(name) })
    }
}
