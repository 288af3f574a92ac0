import ArgumentParser
import Foundation
import NIOHTTP1
import WardenContracts

/// `warden audit …`: the tamper-evident record of every MCP request and admin action.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read and verify the audit record (one hash chain per org).",
        subcommands: [Query.self, Verify.self]
    )

    static let path = "/admin/v1/audit"

    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Records, newest first (a table, or --json).")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (none: the platform's own record).") var org: String?
        @Option(help: "Only this action (mcp.tools.call, tool.held, oauth.connected, …).") var action: String?
        @Option(help: "Only this agent.") var agent: String?
        @Option(help: "Only this tool, prompt or resource (as agents name it).") var name: String?
        @Option(help: "success, failure or denied.") var outcome: String?
        @Option(help: "Records from this time (ISO 8601).") var since: String?
        @Option(help: "Records before this position (the 'next' of a previous page).") var before: Int?
        @Option(help: "At most this many (1–1000).") var limit = 50
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var query: [String] = ["limit=\(limit)"]
            for (key, value) in [
                ("org", org), ("action", action), ("agent", agent), ("name", name), ("outcome", outcome), ("since", since),
                ("before", before.map(String.init)),
            ] {
                if let value { query.append("\(key)=\(SecretCommand.escape(value))") }
            }
            let body = try await AdminClient(gateway, path: AuditCommand.path).send(.GET, "?" + query.joined(separator: "&"))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let page = try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: body)
            var rows = [["#", "TIME", "ACTION", "OUTCOME", "ACTOR", "TARGET", "DETAIL"]]
            for record in page.records {
                let event = record.event
                var detail = event.detail
                if let call = event.call {
                    detail = [
                        call.decision.map { "decision \($0)" }, call.server.map { "server \($0)" }, "\(call.latencyMicroseconds) µs", call.result,
                    ]
                    .compactMap { $0 }.joined(separator: ", ")
                }
                rows.append([
                    String(record.position), event.time.formatted(.iso8601), event.action, event.outcome.rawValue, event.actor, event.target,
                    String(detail.prefix(80)),
                ])
            }
            print(Table.render(rows))
            if let next = page.next { print("older: --before \(next)") }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an org's chain: every record as written, none removed, inserted or reordered; names the first that is not.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (none: the platform's own record).") var org: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: AuditCommand.path).send(
                .GET, "/verify" + (org.map { "?org=\(SecretCommand.escape($0))" } ?? ""))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let result = try EnvelopeCoding.decoder().decode(AuditVerification.self, from: body)
            let chain = result.org.map { "org \($0)" } ?? "the platform"
            if result.intact { return print("the audit record of \(chain) is intact: \(result.records) records") }
            print("the audit record of \(chain) is NOT intact at record \(result.brokenAt ?? 0): \(result.problem ?? "")")
            throw ExitCode(3)
        }
    }
}
