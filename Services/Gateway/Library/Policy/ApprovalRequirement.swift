/// What policy asks before a call runs: who approves it, how many, for how long, under which rule.
package struct ApprovalRequirement: Sendable, Equatable {
    package var roles: [String]
    package var users: [String]
    package var count: Int
    package var expiresSeconds: Int
    package var rule: String
    /// Whether the user an agent acts for may approve it.
    package var allowSelf: Bool

    package init(roles: [String], users: [String], count: Int = 1, expiresSeconds: Int = 3600, rule: String = "", allowSelf: Bool = false) {
        self.roles = roles
        self.users = users
        self.count = count
        self.expiresSeconds = expiresSeconds
        self.rule = rule
        self.allowSelf = allowSelf
    }

    /// "role approver, user usr_1": for messages.
    package var approvers: String { (roles.map { "role \($0)" } + users.map { "user \($0)" }).joined(separator: ", ") }
}
