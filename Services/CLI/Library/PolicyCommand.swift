import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts

/// `warden policy …`: an org's policy as code (YAML), a user's own narrowing of their agents,
/// every version kept, and the decision on any call explained.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Apply, inspect and roll back policies, and explain decisions (deny by default).",
        subcommands: [Apply.self, Show.self, History.self, Rollback.self, Explain.self, Effective.self]
    )

    static let path = "/admin/v1/policies"

    /// Whose policy: an org's, or one of its users' own.
    struct Scope: ParsableArguments {
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (tenant).") var org: String
        @Option(help: "A user's own policy (user-layer rules about their agents) instead of the org's.") var user: String?

        var fields: [String: JSONField] {
            var fields: [String: JSONField] = ["org": .string(org)]
            if let user { fields["user"] = .string(user) }
            return fields
        }

        var query: String { "?org=\(SecretCommand.escape(org))" + (user.map { "&user=\(SecretCommand.escape($0))" } ?? "") }
        var name: String { user.map { "the own policy of user \($0) in \(org)" } ?? "the policy of \(org)" }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a policy document and make it current (a refused one names line, column and field, and changes nothing).")
        @OptionGroup var scope: Scope
        @Option(name: .shortAndLong, help: "The YAML document (- for standard input).") var file: String
        @Flag(help: "Check and compare with the current policy only.") var dryRun = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let data = try InputFile.contents(file)
            guard let document = String(data: data, encoding: .utf8) else { throw ValidationError("\(file) is not UTF-8 text") }
            var fields = scope.fields
            fields["document"] = .string(document)
            fields["dryRun"] = .bool(dryRun)
            let body = try await AdminClient(scope.gateway, path: PolicyCommand.path).send(.POST, "", body: .object(fields))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let applied = try EnvelopeCoding.decoder().decode(PolicyApplied.self, from: body)
            var lines = [
                applied.dryRun
                    ? "dry run: \(scope.name) would change from version \(applied.version.version) as follows (nothing stored)"
                    : "applied \(scope.name) as version \(applied.version.version) (\(applied.version.rules) rules)"
            ]
            for (label, ids) in [("added", applied.added), ("removed", applied.removed), ("changed", applied.changed)] where !ids.isEmpty {
                lines.append("  \(label): \(ids.joined(separator: ", "))")
            }
            if applied.added.isEmpty && applied.removed.isEmpty && applied.changed.isEmpty { lines.append("  no rule changes") }
            if let effects = applied.effects {
                if effects.isEmpty { lines.append("  no agent gains or loses a tool of the org's servers") }
                for effect in effects {
                    var change: [String] = []
                    if !effect.gains.isEmpty { change.append("gains \(effect.gains.joined(separator: ", "))") }
                    if !effect.loses.isEmpty { change.append("loses \(effect.loses.joined(separator: ", "))") }
                    lines.append("  agent \(effect.agent) (\(effect.name)): \(change.joined(separator: "; "))")
                }
            }
            print(lines.joined(separator: "\n"))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the current policy document.")
        @OptionGroup var scope: Scope
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(scope.gateway, path: PolicyCommand.path).send(.GET, scope.query)
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let version = try EnvelopeCoding.decoder().decode(PolicyVersion.self, from: body)
            if version.version == 0 {
                print("# \(scope.name): none applied; nothing is allowed (deny by default)")
            } else {
                print(
                    "# \(scope.name), version \(version.version), applied by \(version.appliedBy ?? "-") at \(version.appliedAt.map(SecretCommand.date) ?? "-")"
                )
            }
            print(version.document, terminator: version.document.hasSuffix("\n") ? "" : "\n")
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every applied version, newest first.")
        @OptionGroup var scope: Scope
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(scope.gateway, path: PolicyCommand.path).send(.GET, "/history" + scope.query)
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let history = try EnvelopeCoding.decoder().decode(PolicyHistory.self, from: body)
            guard !history.versions.isEmpty else { return print("no versions of \(scope.name) (nothing is allowed)") }
            var rows = [["VERSION", "RULES", "APPLIED", "BY"]]
            for version in history.versions {
                rows.append(["\(version.version)", "\(version.rules)", version.appliedAt.map(SecretCommand.date) ?? "-", version.appliedBy ?? "-"])
            }
            print(SecretCommand.table(rows))
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make an earlier version current again (stored as a new version).")
        @OptionGroup var scope: Scope
        @Option(help: "The version to go back to.") var to: Int

        func run() async throws {
            var fields = scope.fields
            fields["version"] = .int(to)
            let body = try await AdminClient(scope.gateway, path: PolicyCommand.path).send(.POST, "/rollback", body: .object(fields))
            let applied = try EnvelopeCoding.decoder().decode(PolicyApplied.self, from: body)
            print("\(scope.name) is version \(to)'s document again, as version \(applied.version.version)")
        }
    }

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decide a call as the policy would, and say which layers and rules decided it.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (tenant).") var org: String
        @Option(help: "The agent's id.") var agent: String
        @Option(help: "The tool's namespaced name (server__tool).") var tool: String
        @Option(help: "The arguments, a JSON object.") var args: String?
        @Option(help: "The client's IP address.") var address: String?
        @Option(name: .customLong("claim"), help: "A claim to assume, name=value (repeat).") var claims: [String] = []
        @Option(help: "When the call happens (ISO 8601; default: now).") var at: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var fields: [String: JSONField] = ["org": .string(org), "agent": .string(agent), "tool": .string(tool)]
            if let args { fields["arguments"] = .string(args) }
            if let address { fields["clientAddress"] = .string(address) }
            if !claims.isEmpty {
                var map: [String: String] = [:]
                for claim in claims {
                    let parts = claim.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { throw ValidationError("--claim takes name=value") }
                    map[parts[0]] = parts[1]
                }
                fields["claims"] = .map(map)
            }
            if let at {
                guard ISO8601DateFormatter().date(from: at) != nil else {
                    throw ValidationError("--at must be ISO 8601, like 2026-12-02T10:00:00+01:00")
                }
                fields["time"] = .string(at)
            }
            let body = try await AdminClient(gateway, path: PolicyCommand.path).send(.POST, "/explain", body: .object(fields))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let explanation = try EnvelopeCoding.decoder().decode(PolicyExplanation.self, from: body)
            var lines = [
                "\(explanation.decision.uppercased()): \(tool) for agent \(agent) (policy versions \(explanation.versions.map(String.init).joined(separator: ", ")))"
            ]
            for layer in explanation.layers {
                lines.append(
                    "  \(layer.layer): \(layer.outcome)\(layer.rules.isEmpty ? "" : " by \(layer.rules.joined(separator: ", "))") — \(layer.reason)")
            }
            if explanation.decision == "approve" {
                lines.append(
                    "  approvals: \(explanation.approvals ?? 1) of roles \((explanation.approverRoles ?? []).joined(separator: ", ")) users \((explanation.approverUsers ?? []).joined(separator: ", "))"
                )
            }
            if explanation.dependsOnCall { lines.append("  (this decision depends on the call's arguments, time or address)") }
            print(lines.joined(separator: "\n"))
        }
    }

    struct Effective: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every tool of the org's servers an agent may use: always, on conditions, or after approval.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (tenant).") var org: String
        @Option(help: "The agent's id.") var agent: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: PolicyCommand.path).send(
                .POST, "/effective", body: .object(["org": .string(org), "agent": .string(agent)]))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let effective = try EnvelopeCoding.decoder().decode(PolicyEffective.self, from: body)
            guard !effective.tools.isEmpty else { return print("agent \(agent) may use no tool of \(org)'s servers") }
            var rows = [["TOOL", "DECISION", "RULES", "CONDITIONS"]]
            for entry in effective.tools {
                rows.append([
                    entry.tool, entry.decision, entry.rules.joined(separator: ", "),
                    entry.conditions.isEmpty ? "-" : entry.conditions.joined(separator: "; "),
                ])
            }
            print(SecretCommand.table(rows))
        }
    }
}
