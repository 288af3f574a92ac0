import Foundation
import Testing
import WardenContracts

/// Policies as code through the real processes and the CLI: refused documents change nothing, every
/// version is kept, and `warden policy explain` decides the issue's four example rules.
@Suite(.serialized) struct PolicyAsCodeTests {
    static let policy = """
        rules:
          - id: researchers-read
            effect: allow
            agents: {classes: [researcher]}
            tools: [web_search, read_file]
          - id: researchers-never-write
            effect: deny
            agents: {classes: [researcher]}
            tools: ["*write*", "*payment*"]
          - id: crm-own-customer
            effect: allow
            tools: [crm_update_record]
            when:
              - arg: $.customer_id
                equals: {claim: customer_id}
          - id: github-projects
            effect: allow
            tools: ["github_*"]
            when:
              - arg: $.repository
                glob: "acme/project-*"
          - id: db-office-hours
            effect: allow
            tools: [db_query]
            when:
              - time: {days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00", zone: Europe/Berlin}
              - clientAddress: any
                in: [10.0.0.0/8]
          - id: payouts
            effect: approve
            agents: {roles: [owner]}
            tools: [pay_invoice]
            approval: {roles: [approver], count: 2}

        """

    func file(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).yaml")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test func policiesAreAppliedCheckedVersionedAndExplained() async throws {
        try await withMesh { mesh in
            try mesh.start(.gateway)
            try await mesh.withAgent {
                func warden(_ arguments: [String]) async throws -> (status: Int32?, output: String) {
                    try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                }
                let users = try await warden(["user", "list", "--org", "acme"]).output
                let owner = try #require(
                    users.split(separator: "\n").first { $0.contains("ada@acme.example") }?.split(separator: " ").first.map(String.init))
                let researcher = try await warden(["agent", "add", "--org", "acme", "--name", "r1", "--owner", owner, "--class", "researcher"]).output
                let assistant = try await warden(["agent", "add", "--org", "acme", "--name", "a1", "--owner", owner]).output

                func explain(_ agent: String, _ tool: String, _ extra: [String] = [], org: String = "acme") async throws -> String {
                    let run = try await warden(["policy", "explain", "--org", org, "--agent", agent, "--tool", tool] + extra)
                    #expect(run.status == 0, "\(run.output)")
                    return run.output
                }
                // A new org has no policy: nothing is allowed. (acme got an allow-all as version 1.)
                _ = try await warden(["org", "create", "beta"])
                let betaOwner = try await warden(["user", "add", "--org", "beta", "--email", "bo@beta.example", "--role", "owner"]).output
                let betaAgent = try await warden(["agent", "add", "--org", "beta", "--name", "b1", "--owner", betaOwner]).output
                let none = try await warden(["policy", "show", "--org", "beta"])
                #expect(none.status == 0 && none.output.contains("none applied"), "\(none.output)")
                let nothing = try await explain(betaAgent, "search__web_search", org: "beta")
                #expect(nothing.hasPrefix("DENY") && nothing.contains("no rule allows"), "\(nothing)")

                // A malformed document is refused with line, column and field, and changes nothing.
                let broken = Self.policy.replacingOccurrences(of: #"glob: "acme/project-*""#, with: #"regex: "(a)\\1""#)
                let refused = try await warden(["policy", "apply", "--org", "acme", "-f", try file(broken)])
                #expect(refused.status != 0 && refused.output.contains("line 21, column 16, rules[3].when[0].regex"), "\(refused.output)")
                #expect(refused.output.contains("backreferences"), "\(refused.output)")
                let typo = try await warden(["policy", "apply", "--org", "acme", "-f", try file("rules:\n  - id: x\n    efect: allow\n")])
                #expect(typo.status != 0 && typo.output.contains("line 3, column 5, rules[0].efect: unknown field"), "\(typo.output)")
                // Obligations are checked like the rest (a redaction path that is not one).
                let obligations = try await warden(
                    [
                        "policy", "apply", "--org", "acme", "-f",
                        try file("rules:\n  - {id: x, effect: allow, tools: [y], obligations: {redact: [token]}}\n"),
                    ])
                #expect(
                    obligations.status != 0 && obligations.output.contains("rules[0].obligations.redact[0]: a path starts with '$'"),
                    "\(obligations.output)")
                let limit = try await warden(
                    ["policy", "apply", "--org", "acme", "-f", try file("rules: []\nlimits:\n  - {id: l, rate: 5/fortnight}\n")])
                #expect(limit.status != 0 && limit.output.contains("line 3, column 19, limits[0].rate"), "\(limit.output)")
                #expect(try await warden(["policy", "show", "--org", "acme"]).output.contains("version 1,"), "the current policy is untouched")

                let applied = try await warden(["policy", "apply", "--org", "acme", "-f", try file(Self.policy)])
                #expect(applied.status == 0 && applied.output.contains("version 2 (6 rules)"), "\(applied.output)")
                #expect(applied.output.contains("removed: allow-all"), "\(applied.output)")

                // Researchers read but never write or pay; others get nothing.
                #expect(try await explain(researcher, "search__web_search").hasPrefix("ALLOW"))
                let write = try await explain(researcher, "files__write_file")
                #expect(write.hasPrefix("DENY") && write.contains("researchers-never-write"), "\(write)")
                #expect(try await explain(assistant, "search__web_search").hasPrefix("DENY"))
                // The CRM record of the user's own customer only.
                let own = try await explain(
                    assistant, "crm__crm_update_record", ["--args", #"{"customer_id": "c-42"}"#, "--claim", "customer_id=c-42"])
                #expect(own.hasPrefix("ALLOW") && own.contains("depends on the call"), "\(own)")
                let other = try await explain(
                    assistant, "crm__crm_update_record", ["--args", #"{"customer_id": "c-43"}"#, "--claim", "customer_id=c-42"])
                #expect(other.hasPrefix("DENY") && other.contains("argument $.customer_id equals claim customer_id"), "\(other)")
                // GitHub on project repositories only.
                #expect(try await explain(assistant, "gh__github_create_issue", ["--args", #"{"repository": "acme/project-x"}"#]).hasPrefix("ALLOW"))
                #expect(try await explain(assistant, "gh__github_create_issue", ["--args", #"{"repository": "acme/secrets"}"#]).hasPrefix("DENY"))
                // The database on weekdays 08:00-18:00 in Berlin, from 10.0.0.0/8.
                let office = ["--address", "10.1.2.3", "--at", "2026-12-02T10:00:00+01:00"]
                #expect(try await explain(assistant, "pg__db_query", office).hasPrefix("ALLOW"))
                #expect(
                    try await explain(assistant, "pg__db_query", ["--address", "192.168.1.9", "--at", "2026-12-02T10:00:00+01:00"]).hasPrefix("DENY"))
                #expect(
                    try await explain(assistant, "pg__db_query", ["--address", "10.1.2.3", "--at", "2026-12-02T19:00:00+01:00"]).hasPrefix("DENY"))
                #expect(
                    try await explain(assistant, "pg__db_query", ["--address", "10.1.2.3", "--at", "2026-12-05T10:00:00+01:00"]).hasPrefix("DENY"))
                // Payments wait for two approvers.
                let pay = try await explain(assistant, "erp__pay_invoice")
                #expect(pay.hasPrefix("APPROVE") && pay.contains("approvals: 2 of roles approver"), "\(pay)")

                // A dry run compares and stores nothing.
                let smaller = Self.policy.components(separatedBy: "  - id: payouts")[0]
                let dry = try await warden(["policy", "apply", "--org", "acme", "-f", try file(smaller), "--dry-run"])
                #expect(dry.status == 0 && dry.output.contains("dry run") && dry.output.contains("removed: payouts"), "\(dry.output)")
                #expect(try await explain(assistant, "erp__pay_invoice").hasPrefix("APPROVE"))

                // A user narrows their own agents: only web search for the assistant.
                let narrow = """
                    rules:
                      - {id: only-search, layer: user, effect: allow, agents: {ids: [\(assistant)]}, tools: [web_search, "github_*"]}
                    """
                let mine = try await warden(["policy", "apply", "--org", "acme", "--user", owner, "-f", try file(narrow)])
                #expect(mine.status == 0, "\(mine.output)")
                let narrowed = try await explain(assistant, "gh__github_create_issue", ["--args", #"{"repository": "acme/project-x"}"#])
                #expect(narrowed.hasPrefix("ALLOW"), "\(narrowed)")
                let notListed = try await explain(assistant, "erp__pay_invoice")
                #expect(notListed.hasPrefix("DENY") && notListed.contains("user: deny"), "\(notListed)")
                let widening = try await warden(
                    ["policy", "apply", "--org", "acme", "--user", owner, "-f", try file("rules:\n  - {id: all, effect: allow, tools: [\"*\"]}\n")])
                #expect(widening.status != 0 && widening.output.contains("user-layer rules only"), "\(widening.output)")

                // Every version is kept; a rollback makes an old one current as a new version.
                let second = try await warden(["policy", "apply", "--org", "acme", "-f", try file(smaller)])
                #expect(second.output.contains("version 3") && second.output.contains("removed: payouts"), "\(second.output)")
                let history = try await warden(["policy", "history", "--org", "acme"])
                #expect(history.output.contains("platform-admin") && history.output.split(separator: "\n").count == 4, "\(history.output)")
                let rolled = try await warden(["policy", "rollback", "--org", "acme", "--to", "2"])
                #expect(rolled.status == 0 && rolled.output.contains("as version 4"), "\(rolled.output)")
                #expect(try await explain(assistant, "erp__pay_invoice", []).hasPrefix("DENY"), "still narrowed by the user")
                #expect(try await warden(["policy", "show", "--org", "acme"]).output.contains("id: payouts"))

                // Another org's policy cannot be touched through this one's name.
                let unknown = try await warden(["policy", "apply", "--org", "nobody", "-f", try file(Self.policy)])
                #expect(unknown.status != 0, "\(unknown.output)")
            }
        }
    }
}
