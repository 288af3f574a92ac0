import Foundation
import Testing
import WardenMCP

@testable import WardenPolicyEngine

/// Limits as written in a policy, and which calls each counts.
@Suite struct RateLimitTests {
    static let document = """
        rules:
          - {id: everyone, effect: allow, tools: ["*"]}
          - {id: merges, effect: allow, agents: {classes: [deployer]}, tools: ["github__merge_*"], obligations: {rateLimit: merge-bucket}}
        limits:
          - id: search-rate
            rate: 30/minute
            burst: 10
            per: [agent, tool]
            agents: {classes: [researcher]}
            tools: ["*search*"]
          - {id: daily, quota: 1000/day, per: [user]}
          - {id: merge-bucket, rate: 5/hour}
        """

    func input(_ tool: String, agentClass: String = "researcher") -> DecisionInput {
        DecisionInput(org: "acme", agent: "agt_1", agentClass: agentClass, user: "usr_1", tool: tool)
    }

    @Test func limitsReadAsWritten() throws {
        let document = try PolicyDocument(yaml: Self.document)
        #expect(document.limits.map(\.id) == ["search-rate", "daily", "merge-bucket"])
        #expect(document.limits[0].kind == .rate(count: 30, periodSeconds: 60, burst: 10))
        #expect(document.limits[0].per == [.agent, .tool])
        #expect(document.limits[1].kind == .dailyQuota(count: 1000) && document.limits[1].per == [.user])
        #expect(document.limits[2].kind == .rate(count: 5, periodSeconds: 3600, burst: 5) && document.limits[2].per == [.agent])
        // Selecting neither agents nor tools and named by a rule: it counts that rule's calls only.
        #expect(document.limits[2].onlyWhenNamed && !document.limits[1].onlyWhenNamed)
    }

    @Test func eachCallCountsAgainstTheLimitsThatSelectIt() throws {
        let engine = PolicyEngine(admin: try PolicyDocument(yaml: Self.document))
        #expect(engine.decide(input("web__search")).limits.map(\.id) == ["search-rate", "daily"])
        #expect(engine.decide(input("web__fetch")).limits.map(\.id) == ["daily"])
        #expect(engine.decide(input("web__search", agentClass: "default")).limits.map(\.id) == ["daily"])
        #expect(engine.decide(input("github__merge_pr", agentClass: "deployer")).limits.map(\.id) == ["daily", "merge-bucket"])
        // A denied call counts against nothing.
        let denying = PolicyEngine(admin: try PolicyDocument(yaml: "rules: []\nlimits: [{id: all, rate: 1/second}]\n"))
        let denied = denying.decide(input("web__search"))
        #expect(denied.outcome == .deny && denied.limits.isEmpty)
    }

    @Test func theSmallestResultCapOfTheGrantingRulesHolds() throws {
        let engine = PolicyEngine(
            admin: try PolicyDocument(
                yaml: """
                    rules:
                      - {id: all, effect: allow, tools: ["*"]}
                      - {id: db, effect: allow, tools: [db_query], obligations: {maxResultBytes: 4096}}
                      - {id: db-small, effect: allow, tools: [db_query], obligations: {maxResultBytes: 1024}}
                    """))
        #expect(engine.decide(input("x__db_query")).maxResultBytes == 1024)
        #expect(engine.decide(input("x__web_search")).maxResultBytes == nil)
    }

    @Test(arguments: [
        ("limits:\n  - {rate: 1/second}", "limits[0].id", "every limit needs an id"),
        ("limits:\n  - {id: a, rate: 10/fortnight}", "limits[0].rate", "COUNT/PERIOD"),
        ("limits:\n  - {id: a, rate: 0/minute}", "limits[0].rate", "COUNT/PERIOD"),
        ("limits:\n  - {id: a}", "limits[0].rate", "a rate (30/minute) or a quota"),
        ("limits:\n  - {id: a, rate: 1/minute, quota: 5/day}", "limits[0].quota", "not both"),
        ("limits:\n  - {id: a, quota: 5/hour}", "limits[0].quota", "COUNT/day"),
        ("limits:\n  - {id: a, quota: 5/day, burst: 2}", "limits[0].burst", "no burst"),
        ("limits:\n  - {id: a, rate: 1/day, burst: 5}", "limits[0].burst", "refill within a day"),
        ("limits:\n  - {id: a, rate: 1/minute, per: [planet]}", "limits[0].per[0]", "agent, user, org or tool"),
        ("limits:\n  - {id: a, rate: 1/minute}\n  - {id: a, rate: 2/minute}", "limits[1].id", "already the id"),
        ("limits:\n  - {id: a, rate: 1/minute, window: 5}", "limits[0].window", "unknown field"),
    ])
    func malformedLimitsAreRefusedWithTheirField(_ limits: String, _ field: String, _ message: String) {
        let yaml = "rules: []\n" + limits + "\n"
        #expect {
            try PolicyDocument(yaml: yaml)
        } throws: { error in
            guard let error = error as? PolicyError else { return false }
            return error.field == field && error.message.contains(message)
        }
    }

    @Test func aRuleMustNameALimitThatExists() {
        #expect {
            try PolicyDocument(yaml: "rules:\n  - {id: r, effect: allow, tools: [x], obligations: {rateLimit: nope}}\n")
        } throws: { error in
            (error as? PolicyError).map { $0.field == "rules[0].obligations.rateLimit" && $0.line == 2 } ?? false
        }
    }
}

/// Prompts and resources are decided by the rules that name them, tools by theirs.
@Suite struct PromptAndResourceRuleTests {
    @Test func eachKindIsDecidedByItsOwnPatterns() throws {
        let engine = PolicyEngine(
            admin: try PolicyDocument(
                yaml: """
                    rules:
                      - {id: tools, effect: allow, tools: ["*"]}
                      - {id: greet, effect: allow, prompts: [docs__greet, "*summary*"]}
                      - {id: public, effect: allow, resources: ["docs+file:///public/*"]}
                      - {id: secrets, effect: deny, resources: ["*secret*"]}
                    """))
        func decide(_ kind: ItemKind, _ name: String) -> Decision.Outcome {
            var input = DecisionInput(org: "acme", agent: "a", agentClass: "default", user: "u", tool: name)
            input.kind = kind
            return engine.decide(input).outcome
        }
        #expect(decide(.tool, "docs__search") == .allow)
        #expect(decide(.prompt, "docs__greet") == .allow && decide(.prompt, "crm__weekly_summary") == .allow)
        #expect(decide(.prompt, "docs__search") == .deny, "a tool rule grants no prompt of that name")
        #expect(decide(.resource, "docs+file:///public/a.txt") == .allow)
        #expect(decide(.resource, "docs+file:///public/secret.txt") == .deny, "an explicit deny wins")
        #expect(decide(.resource, "docs+file:///private/a.txt") == .deny)
        #expect(decide(.resource, "other+file:///public/a.txt") == .deny, "resource patterns match the whole server+uri")
        #expect(decide(.tool, "docs+file:///public/a.txt") == .allow, "(a tool named so is a tool: tools: [*])")
    }

    @Test func aRuleNamesToolsPromptsOrResources() {
        #expect {
            try PolicyDocument(yaml: "rules:\n  - {id: r, effect: allow}\n")
        } throws: { error in
            (error as? PolicyError).map { $0.field == "rules[0].tools" && $0.message.contains("prompts or resources") } ?? false
        }
    }
}

/// A claim the user does not have is unknown: it never satisfies an allow rule, and a deny rule
/// that reads it holds.
@Suite struct MissingClaimTests {
    @Test func aMissingAttributeIsReadTheSafeWay() throws {
        let engine = PolicyEngine(
            admin: try PolicyDocument(
                yaml: """
                    rules:
                      - {id: all, effect: allow, tools: ["*"]}
                      - {id: own, effect: allow, tools: [crm_update], when: [{arg: $.customer, equals: {claim: customer_id}}]}
                      - {id: no-contractors, effect: deny, tools: [payroll], when: [{claim: employment, equals: contractor}]}
                      - {id: cleared, effect: deny, tools: [vault_read], when: [{claim: clearance, exists: false}]}
                    """))
        func decide(_ tool: String, _ claims: [String: String], _ arguments: String = "{}") throws -> Decision.Outcome {
            var input = DecisionInput(org: "o", agent: "a", agentClass: "default", user: "u", tool: tool)
            input.claims = claims.mapValues(JSONValue.string)
            input.arguments = try JSONParser().parse(arguments)
            return engine.decide(input).outcome
        }
        #expect(try decide("x__payroll", [:]) == .deny, "an employment nobody set may be contractor")
        #expect(try decide("x__payroll", ["employment": "staff"]) == .allow)
        #expect(try decide("x__payroll", ["employment": "contractor"]) == .deny)
        #expect(try decide("x__vault_read", [:]) == .deny && decide("x__vault_read", ["clearance": "high"]) == .allow)
    }
}
