import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts

/// `warden tool …`: pinned tool definitions. A tool is usable only with the definition its org
/// approved; a changed one waits here for an admin.
struct ToolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tool",
        abstract: "Review, compare and approve the tool definitions an org's agents may use (tool pinning).",
        subcommands: [List.self, Pending.self, Diff.self, Approve.self, Trust.self]
    )

    static let path = "/admin/v1/tools"

    struct OrgOptions: ParsableArguments {
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (tenant).") var org: String
        @Flag(help: "Print JSON.") var json = false
    }

    static func table(_ list: ToolPinList) -> String {
        var lines = ["trust: \(list.trust.rawValue)"]
        if list.tools.isEmpty { lines.append("no tools here") }
        for tool in list.tools {
            var line = "\(tool.tool)  \(tool.status)"
            if let pending = tool.pendingFingerprint { line += "  held \(pending.prefix(16))" }
            if let approved = tool.approvedFingerprint { line += "  approved \(approved.prefix(16))" + (tool.approvedBy.map { " by \($0)" } ?? "") }
            lines.append(line)
            for flag in tool.flags { lines.append("    ! \(flag)") }
        }
        return lines.joined(separator: "\n")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every tool the org's agents were shown, with its status.")
        @OptionGroup var options: OrgOptions

        func run() async throws {
            let body = try await AdminClient(options.gateway, path: ToolCommand.path).send(.GET, "?org=\(SecretCommand.escape(options.org))")
            if options.json { return print(String(decoding: body, as: UTF8.self)) }
            print(ToolCommand.table(try EnvelopeCoding.decoder().decode(ToolPinList.self, from: body)))
        }
    }

    struct Pending: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tools held for approval: new ones (when the org approves new tools), changed ones, ones with invisible characters.")
        @OptionGroup var options: OrgOptions

        func run() async throws {
            let body = try await AdminClient(options.gateway, path: ToolCommand.path).send(
                .GET, "?org=\(SecretCommand.escape(options.org))&pending=true")
            if options.json { return print(String(decoding: body, as: UTF8.self)) }
            let list = try EnvelopeCoding.decoder().decode(ToolPinList.self, from: body)
            if list.tools.isEmpty { return print("nothing is held for approval in \(options.org)") }
            print(ToolCommand.table(list))
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What changed between a tool's approved and its held definition.")
        @OptionGroup var options: OrgOptions
        @Argument(help: "The tool, as agents see it (server__tool).") var tool: String

        func run() async throws {
            let body = try await AdminClient(options.gateway, path: ToolCommand.path).send(
                .GET, "/diff?org=\(SecretCommand.escape(options.org))&tool=\(SecretCommand.escape(tool))")
            if options.json { return print(String(decoding: body, as: UTF8.self)) }
            let diff = try EnvelopeCoding.decoder().decode(ToolPinDiff.self, from: body)
            var lines = [
                "\(diff.tool): approved \(diff.approvedFingerprint.map { String($0.prefix(16)) } ?? "never")"
                    + ", held \(diff.pendingFingerprint.map { String($0.prefix(16)) } ?? "nothing")"
            ]
            for flag in diff.flags { lines.append("! \(flag)") }
            if diff.pendingFingerprint != nil {
                lines.append("--- approved")
                lines.append("+++ held")
                lines += diff.diff
                lines.append("approve with: warden tool approve --org \(options.org) \(diff.tool) --fingerprint \(diff.pendingFingerprint!)")
            }
            print(lines.joined(separator: "\n"))
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make held definitions the approved ones: one tool, a server's, or all.")
        @OptionGroup var options: OrgOptions
        @Argument(help: "The tool (server__tool); omit with --server or --all.") var tool: String?
        @Option(help: "Every held tool of this server.") var server: String?
        @Flag(help: "Every held tool of the org.") var all = false
        @Option(help: "Only if the held definition is still this one (as `warden tool diff` printed it).") var fingerprint: String?

        func validate() throws {
            let chosen = [tool != nil, server != nil, all].filter { $0 }.count
            guard chosen == 1 else { throw ValidationError("name one tool, or --server SERVER, or --all") }
        }

        func run() async throws {
            var fields: [String: JSONField] = ["org": .string(options.org)]
            if let tool { fields["tool"] = .string(tool) }
            if let server { fields["server"] = .string(server) }
            if let fingerprint { fields["fingerprint"] = .string(fingerprint) }
            let body = try await AdminClient(options.gateway, path: ToolCommand.path).send(.POST, "/approve", body: .object(fields))
            if options.json { return print(String(decoding: body, as: UTF8.self)) }
            let approved = try EnvelopeCoding.decoder().decode(ToolPinsApproved.self, from: body)
            print("approved: \(approved.approved.joined(separator: ", "))")
        }
    }

    struct Trust: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Whether new tools are usable on first sight (first-use) or only once approved (approval, the default).")
        @OptionGroup var options: OrgOptions
        @Argument(help: "first-use or approval.") var trust: String

        func validate() throws {
            guard ToolTrust(rawValue: trust) != nil else { throw ValidationError("trust must be first-use or approval") }
        }

        func run() async throws {
            let body = try await AdminClient(options.gateway, path: ToolCommand.path).send(
                .POST, "/trust", body: .object(["org": .string(options.org), "trust": .string(trust)]))
            if options.json { return print(String(decoding: body, as: UTF8.self)) }
            print("org \(options.org) now trusts new tools: \(trust) (changed definitions are always held for approval)")
        }
    }
}
