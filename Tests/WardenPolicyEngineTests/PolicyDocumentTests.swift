import Foundation
import Testing
import WardenMCP

@testable import WardenPolicyEngine

@Suite struct PolicyDocumentTests {
    func refusal(_ yaml: String) -> PolicyError? {
        do {
            _ = try PolicyDocument(yaml: yaml)
            return nil
        } catch {
            return error
        }
    }

    @Test func malformedDocumentsNameLineColumnAndField() {
        let cases: [(String, Int, Int, String, String)] = [
            (
                "rules:\n  - id: a\n    effect: allow\n    tools: [x]\n    when:\n      - arg: $.repo\n        regex: \"(a)\\\\1\"\n", 7, 16,
                "rules[0].when[0].regex", "backreferences"
            ),
            ("rules:\n  - id: a\n    efect: allow\n", 3, 5, "rules[0].efect", "unknown field"),
            ("rules:\n  - id: a\n    effect: permit\n    tools: [x]\n", 3, 13, "rules[0].effect", "allow, deny or approve"),
            ("rules:\n  - id: a\n    effect: allow\n", 2, 5, "rules[0].tools", "names its tools"),
            ("rules:\n  - id: a\n    effect: approve\n    tools: [x]\n", 2, 5, "rules[0].approval", "who approves"),
            ("rules:\n  - {id: a, effect: allow, tools: [x]}\n  - {id: a, effect: deny, tools: [y]}\n", 3, 5, "rules[1].id", "already the id"),
            ("rules: [\n", 2, 1, "", "not valid YAML"),
            (
                "rules:\n  - id: a\n    effect: allow\n    tools: [x]\n    when:\n      - time: {days: [mon], from: \"8\", zone: Europe/Berlin}\n", 6,
                15, "rules[0].when[0].time", "HH:MM"
            ),
            (
                "rules:\n  - id: a\n    effect: allow\n    tools: [x]\n    when:\n      - clientAddress: x\n        in: [10.0.0.0/33]\n", 7, 13,
                "rules[0].when[0].in[0]", "CIDR"
            ),
            (
                "rules:\n  - id: a\n    effect: allow\n    tools: [x]\n    when:\n      - arg: customer_id\n        equals: 1\n", 6, 14,
                "rules[0].when[0].arg", "starts with '$'"
            ),
            ("version: 2\nrules: []\n", 1, 10, "version", "only version is 1"),
            (
                "rules:\n  - id: a\n    effect: allow\n    tools: [x]\n    when: [{arg: $.x, glob: \"\"}]\n", 5, 29, "rules[0].when[0].glob",
                "empty glob"
            ),
            (
                "rules:\n  - id: a\n    effect: approve\n    tools: [x]\n    approval: {roles: [r], expires: 99999999999999999d}\n", 5, 37,
                "rules[0].approval.expires", "a duration"
            ),
            (
                "rules:\n  - id: a\n    effect: allow\n    tools: [x]\n    when: [{time: {from: \"09:00\", to: \"09:00\"}}]\n", 5, 19,
                "rules[0].when[0].time", "the same time"
            ),
        ]
        for (yaml, line, column, field, message) in cases {
            let error = refusal(yaml)
            #expect(error?.line == line && error?.column == column && error?.field == field, "\(yaml)\n→ \(String(describing: error))")
            #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        }
    }

    @Test func aliasesCannotBlowADocumentUp() {
        // Ten levels of ten aliases each would stand for 10^10 values.
        var anchors = #"l0: &l0 ["a", "a", "a", "a", "a", "a", "a", "a", "a", "a"]"#
        for level in 1..<10 { anchors += ", l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]" }
        let yaml = "rules:\n  - id: a\n    effect: allow\n    tools: [x]\n    description: {\(anchors)}\n    when: [{arg: $.v, in: *l9}]\n"
        let clock = ContinuousClock()
        var error: PolicyError?
        let elapsed = clock.measure { error = refusal(yaml) }
        #expect(error?.message.contains("too large once its aliases are expanded") == true, "\(String(describing: error))")
        #expect(elapsed < .seconds(30), "refused without expanding: \(elapsed)")
    }

    @Test func aRuleReadsAsWritten() throws {
        let document = try PolicyDocument(
            yaml: """
                rules:
                  - id: reviewers
                    effect: approve
                    agents: {classes: [deployer], roles: [admin]}
                    tools: ["github__merge_*"]
                    approval: {roles: [approver], count: 2, expires: 30m}
                    obligations: {rateLimit: merges, redact: [$.token], maxResultBytes: 65536}
                limits:
                  - {id: merges, rate: 10/hour}
                """)
        let rule = try #require(document.rules.first)
        #expect(rule.effect == .approve && rule.layer == .admin && rule.line == 2)
        #expect(rule.subjects.classes == ["deployer"] && rule.subjects.roles == ["admin"])
        #expect(rule.approval == PolicyRule.Approval(roles: ["approver"], users: [], count: 2, expiresSeconds: 1800, rule: "reviewers"))
        // The acting user approving their own agent is off unless the rule says so.
        let selfApproving = try PolicyDocument(
            yaml: "rules:\n  - {id: own, effect: approve, tools: [x], approval: {users: [usr_1], selfApproval: true}}\n")
        #expect(selfApproving.rules.first?.approval?.allowSelf == true)
        #expect(throws: PolicyError.self) {
            try PolicyDocument(yaml: "rules:\n  - {id: own, effect: approve, tools: [x], approval: {users: [usr_1], selfApproval: maybe}}\n")
        }
        #expect(rule.obligations.rateLimit == "merges" && rule.obligations.maxResultBytes == 65536)
        #expect(rule.obligations.redact.map(\.description) == ["$.token"])
    }
}
