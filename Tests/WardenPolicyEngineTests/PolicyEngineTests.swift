import Foundation
import Testing
import WardenMCP

@testable import WardenPolicyEngine

/// The issue's four example rules, and the layers.
@Suite struct PolicyEngineTests {
    static let policy = """
        rules:
          # "the researcher class may call web_search and read_file, and nothing whose name contains write or payment"
          - id: researchers-read
            effect: allow
            agents: {classes: [researcher]}
            tools: [web_search, read_file]
          - id: researchers-never-write
            effect: deny
            agents: {classes: [researcher]}
            tools: ["*write*", "*payment*"]
          # "crm_update_record only when arguments.customer_id equals the acting user's customer_id claim"
          - id: crm-own-customer
            effect: allow
            tools: [crm_update_record]
            when:
              - arg: $.customer_id
                equals: {claim: customer_id}
          # "github_* only for repositories matching acme/project-*"
          - id: github-projects
            effect: allow
            tools: ["github_*"]
            when:
              - arg: $.repository
                glob: "acme/project-*"
          # "db_query only on weekdays 08:00–18:00 Europe/Berlin, and only from 10.0.0.0/8"
          - id: db-office-hours
            effect: allow
            tools: [db_query]
            when:
              - time: {days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00", zone: Europe/Berlin}
              - clientAddress: any
                in: [10.0.0.0/8]
          - id: payouts
            effect: approve
            agents: {roles: [finance]}
            tools: [pay_invoice]
            approval: {roles: [approver]}
        """

    let engine: PolicyEngine

    init() throws { engine = PolicyEngine(admin: try PolicyDocument(yaml: Self.policy)) }

    func input(
        _ tool: String, class agentClass: String = "assistant", arguments: JSONValue = .object([]), claims: [String: JSONValue] = [:],
        address: String? = nil, time: Date = Date(), roles: Set<String> = ["member"], user: String = "u1"
    ) -> DecisionInput {
        DecisionInput(
            org: "acme", agent: "a1", agentClass: agentClass, user: user, roles: roles, clientAddress: address, claims: claims, tool: tool,
            arguments: arguments, time: time)
    }

    func outcome(_ input: DecisionInput, _ other: PolicyEngine? = nil) -> Decision.Outcome { (other ?? engine).decide(input).outcome }

    @Test func researchersReadButNeverWriteOrPay() {
        #expect(outcome(input("search__web_search", class: "researcher")) == .allow)
        #expect(outcome(input("files__read_file", class: "researcher")) == .allow)
        #expect(outcome(input("files__write_file", class: "researcher")) == .deny)
        #expect(outcome(input("billing__payment_refund", class: "researcher")) == .deny)
        #expect(outcome(input("search__web_search", class: "assistant")) == .deny, "another class is not granted")
        let denied = engine.decide(input("files__write_file", class: "researcher"))
        #expect(denied.layers.first?.rules == ["researchers-never-write"])
        #expect(engine.mayList(input("files__read_file", class: "researcher")))
        #expect(!engine.mayList(input("files__write_file", class: "researcher")))
    }

    @Test func crmOnlyForTheUsersOwnCustomer() {
        let args: (String) -> JSONValue = { .object([("customer_id", .string($0)), ("status", .string("vip"))]) }
        #expect(outcome(input("crm__crm_update_record", arguments: args("c-42"), claims: ["customer_id": .string("c-42")])) == .allow)
        #expect(outcome(input("crm__crm_update_record", arguments: args("c-43"), claims: ["customer_id": .string("c-42")])) == .deny)
        #expect(outcome(input("crm__crm_update_record", arguments: args("c-42"))) == .deny, "no claim: no match")
        let decision = engine.decide(input("crm__crm_update_record", arguments: args("c-43"), claims: ["customer_id": .string("c-42")]))
        #expect(decision.dependsOnCall)
        #expect(decision.layers.first?.reason.contains("argument $.customer_id equals claim customer_id") == true, "\(decision.layers)")
        #expect(engine.mayList(input("crm__crm_update_record")), "listed: some call may be allowed")
    }

    @Test func githubOnlyForProjectRepositories() {
        let repo: (String) -> JSONValue = { .object([("repository", .string($0))]) }
        #expect(outcome(input("gh__github_create_issue", arguments: repo("acme/project-alpha"))) == .allow)
        #expect(outcome(input("gh__github_create_issue", arguments: repo("acme/secret-plans"))) == .deny)
        #expect(outcome(input("gh__github_create_issue", arguments: .object([]))) == .deny)
    }

    @Test func databaseOnlyInOfficeHoursFromTheOfficeNetwork() throws {
        let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = berlin
        // Wednesday 2026-12-02 10:00 and 19:00 in Berlin; Saturday 2026-12-05 10:00.
        let wednesday10 = try #require(calendar.date(from: DateComponents(year: 2026, month: 12, day: 2, hour: 10)))
        let wednesday19 = try #require(calendar.date(from: DateComponents(year: 2026, month: 12, day: 2, hour: 19)))
        let saturday10 = try #require(calendar.date(from: DateComponents(year: 2026, month: 12, day: 5, hour: 10)))
        #expect(outcome(input("pg__db_query", address: "10.1.2.3", time: wednesday10)) == .allow)
        #expect(outcome(input("pg__db_query", address: "192.168.1.5", time: wednesday10)) == .deny)
        #expect(outcome(input("pg__db_query", address: "10.1.2.3", time: wednesday19)) == .deny)
        #expect(outcome(input("pg__db_query", address: "10.1.2.3", time: saturday10)) == .deny)
        #expect(outcome(input("pg__db_query", time: wednesday10)) == .deny, "no address: no match")
    }

    @Test func approvalsAndDefaultDeny() {
        guard case .approve(let approval) = outcome(input("erp__pay_invoice", roles: ["finance"])) else {
            Issue.record("a finance agent's payment waits for approval")
            return
        }
        #expect(approval.roles == ["approver"] && approval.count == 1)
        #expect(outcome(input("erp__pay_invoice")) == .deny)
        #expect(outcome(input("anything__else")) == .deny, "deny by default")
        #expect(outcome(input("x__y"), PolicyEngine(admin: PolicyDocument(rules: []))) == .deny, "an empty policy allows nothing")
    }

    @Test func aUserNarrowsTheirOwnAgentsOnly() throws {
        let admin = try PolicyDocument(yaml: "rules:\n  - {id: all, effect: allow, tools: [\"*\"]}\n")
        let mine = try PolicyDocument(
            yaml: """
                rules:
                  - {id: only-search, layer: user, effect: allow, agents: {ids: [a1]}, tools: [web_search]}
                  - {id: no-delete, layer: user, effect: deny, tools: ["*delete*"]}
                """)
        let engine = PolicyEngine(admin: admin, users: ["u1": mine])
        #expect(outcome(input("s__web_search"), engine) == .allow)
        #expect(outcome(input("s__read_file"), engine) == .deny, "a1 is narrowed to web_search")
        #expect(engine.decide(input("s__read_file")).layers.last?.reason.contains("does not list") == true)
        #expect(outcome(input("s__read_file", user: "u2"), engine) == .allow, "another user's agents are not touched")
        var other = input("s__delete_all")
        other.agent = "a2"
        #expect(outcome(other, engine) == .deny, "the user's deny covers all their agents")
        other.tool = "s__read_file"
        #expect(outcome(other, engine) == .allow, "a2 is not narrowed")
        // A user cannot widen: admin denies stand.
        let strict = PolicyEngine(admin: PolicyDocument(rules: []), users: ["u1": mine])
        #expect(outcome(input("s__web_search"), strict) == .deny)
    }

    @Test func whatCannotBeKnownIsReadTheSafeWay() throws {
        let engine = PolicyEngine(
            admin: try PolicyDocument(
                yaml: """
                    rules:
                      - {id: everything, effect: allow, tools: ["*"]}
                      - id: not-for-contractors
                        effect: deny
                        tools: ["*"]
                        when: [{claim: employment, equals: contractor}]
                      - id: own-customers
                        effect: allow
                        tools: [crm_read]
                        when: [{arg: $.customer_id, equals: {claim: customer_id}}]
                      - id: no-secrets
                        effect: deny
                        tools: [search]
                        when: [{arg: $.query, regex: "secret"}]
                    """))
        var input = DecisionInput(org: "acme", agent: "a1", agentClass: "c", user: "u1", claims: [:], claimsKnown: false, tool: "s__x")
        #expect(outcome(input, engine) == .deny, "unknown claims: the deny rule on a claim holds")
        input.claimsKnown = true
        input.claims = ["employment": .string("staff")]
        #expect(outcome(input, engine) == .allow)
        // Lists: an allow condition holds for every element, a deny condition for any.
        input.claims["customer_id"] = .string("c-1")
        input.tool = "crm__crm_read"
        input.arguments = .object([("customer_id", .array([.string("c-1"), .string("c-2")]))])
        #expect(engine.decide(input).layers.first?.rules.contains("own-customers") == false, "allowed by everything, not own-customers")
        input.tool = "s__search"
        input.arguments = .object([("query", .array([.string("weather"), .string("top secret")]))])
        #expect(outcome(input, engine) == .deny)
        // A text too long to match is unknown: the deny rule holds.
        input.arguments = .object([("query", .string(String(repeating: "x", count: LinearRegex.maximumTextScalars + 1)))])
        #expect(outcome(input, engine) == .deny)
        input.arguments = .object([("query", .string("weather"))])
        #expect(outcome(input, engine) == .allow)
    }

    @Test func anAllowConditionOnAListNeedsEveryElement() throws {
        let engine = PolicyEngine(
            admin: try PolicyDocument(
                yaml: """
                    rules:
                      - id: projects
                        effect: allow
                        tools: [github_merge]
                        when: [{arg: $.repositories, glob: "acme/project-*"}]
                    """))
        var input = DecisionInput(org: "acme", agent: "a1", agentClass: "c", user: "u1", tool: "gh__github_merge")
        input.arguments = .object([("repositories", .array([.string("acme/project-a"), .string("acme/project-b")]))])
        #expect(outcome(input, engine) == .allow)
        input.arguments = .object([("repositories", .array([.string("acme/project-a"), .string("acme/secrets")]))])
        #expect(outcome(input, engine) == .deny, "one repository outside the projects denies the call")
        input.arguments = .object([("repositories", .array([]))])
        #expect(outcome(input, engine) == .deny, "an empty list matches nothing")
    }
}
