import ArgumentParser
import Foundation
import WardenMCP
import WardenPolicyEngine

/// The policy engine alone, as the policy service runs it for every decision it is asked: an org
/// policy of `rules` rules (tool globs, classes, argument conditions with globs and linear-time
/// regular expressions, time windows, address ranges), decisions on tools that match some rules and
/// on tools that match none.
struct PolicyBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "policy", abstract: "Policy rule evaluation latency (in process).")

    @Option var rules = 1_000
    @Option var decisions = 50_000

    func run() async throws {
        let yaml = Self.document(rules: rules)
        try await measure(yaml)
    }

    /// A policy of `rules` rules of four shapes (see the type's comment).
    static func document(rules: Int) -> String {
        var yaml = "rules:\n"
        for index in 0..<rules {
            switch index % 4 {
            case 0:
                yaml += "  - {id: r\(index), effect: allow, agents: {classes: [class\(index % 50)]}, tools: [\"tool\(index)_*\"]}\n"
            case 1:
                yaml += """
                      - id: r\(index)
                        effect: allow
                        tools: ["svc\(index % 20)__op\(index)"]
                        when:
                          - arg: $.repository
                            glob: "acme/project-\(index)-*"
                          - arg: $.branch
                            regex: "^(main|release/[0-9]+)$"

                    """
            case 2:
                yaml += "  - {id: r\(index), effect: deny, agents: {roles: [role\(index % 10)]}, tools: [\"*danger\(index)*\"]}\n"
            default:
                yaml += """
                      - id: r\(index)
                        effect: allow
                        tools: [db\(index)]
                        when:
                          - time: {days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00", zone: Europe/Berlin}
                          - clientAddress: any
                            in: [10.0.0.0/8]

                    """
            }
        }
        return yaml
    }

    func measure(_ yaml: String) async throws {
        let parseStart = ContinuousClock.now
        let document = try PolicyDocument(yaml: yaml)
        print("parsed and checked \(document.rules.count) rules in \(Self.microseconds(ContinuousClock.now - parseStart) / 1000) ms")
        let engine = PolicyEngine(admin: document)
        let arguments: JSONValue = .object([("repository", .string("acme/project-5-alpha")), ("branch", .string("release/12"))])
        let inputs = [
            ("a tool granted by a class rule", DecisionInput(org: "acme", agent: "a", agentClass: "class4", user: "u", tool: "x__tool4_read")),
            (
                "a tool granted on argument conditions",
                DecisionInput(org: "acme", agent: "a", agentClass: "c", user: "u", tool: "svc5__op5", arguments: arguments)
            ),
            ("a tool no rule grants (deny by default)", DecisionInput(org: "acme", agent: "a", agentClass: "c", user: "u", tool: "x__unknown")),
        ]
        // Wildcard rules about every agent, found by the literal each pattern needs (`x12_`)...
        var everyone = "rules:\n"
        for index in 0..<rules { everyone += "  - {id: w\(index), effect: allow, tools: [\"*x\(index)_*\"]}\n" }
        let everyoneEngine = PolicyEngine(admin: try PolicyDocument(yaml: everyone))
        // ... and the worst shape: every rule needs the same literal (`_read`), so each decision tests
        // every pattern (a few of them match: `*_read*999`, `*_read*99`, `*_read*9`).
        var shared = "rules:\n"
        for index in 0..<rules { shared += "  - {id: s\(index), effect: allow, tools: [\"*_read*\(index)\"]}\n" }
        let sharedEngine = PolicyEngine(admin: try PolicyDocument(yaml: shared))
        let cases =
            inputs.map { ($0.0, $0.1, engine) } + [
                (
                    "a tool among \(rules) wildcard rules about every agent",
                    DecisionInput(org: "acme", agent: "a", agentClass: "c", user: "u", tool: "s__x\(rules - 1)_read"), everyoneEngine
                ),
                (
                    "a tool among \(rules) wildcard rules about every agent that all need a literal its name contains",
                    DecisionInput(org: "acme", agent: "a", agentClass: "c", user: "u", tool: "s__x_read\(rules - 1)"), sharedEngine
                ),
            ]
        let clock = ContinuousClock()
        for (name, input, engine) in cases {
            var samples: [Duration] = []
            samples.reserveCapacity(decisions)
            var allowed = 0
            for _ in 0..<decisions {
                let start = clock.now
                if case .allow = engine.decide(input).outcome { allowed += 1 }
                samples.append(clock.now - start)
            }
            samples.sort()
            let (p50, p99) = (Self.microseconds(samples[samples.count / 2]), Self.microseconds(samples[samples.count * 99 / 100]))
            let outcome = allowed == decisions ? "allowed" : allowed == 0 ? "denied" : "mixed"
            print("\(name), \(rules) rules: p50 \(String(format: "%.1f", p50)) µs, p99 \(String(format: "%.1f", p99)) µs (\(outcome))")
        }
    }

    static func microseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
    }
}
