import ArgumentParser
import Foundation
import NIOHTTP1
import WardenAuditChain
import WardenContracts

/// `warden audit …`: the tamper-evident record of every MCP request and admin action.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read and verify the audit record (one hash chain per org).",
        subcommands: [Query.self, Tail.self, Verify.self, Export.self, Keys.self, Retention.self, Sinks.self, Continuity.self]
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
            abstract:
                "Check an org's chain: every record as written, none removed, inserted or reordered, every signed checkpoint valid; names the first record that is not.",
            discussion: """
                With --file, checks an export (NDJSON or CSV from `warden audit export`) offline, with the public keys \
                from --keys (a file saved from `warden audit keys`) or, without --keys, fetched from the gateway.
                """)
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (none: the platform's own record).") var org: String?
        @Option(help: "An export to verify instead of the stored record.") var file: String?
        @Option(help: "The audit public keys (JSON from `warden audit keys`) for --file.") var keys: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let result: AuditVerification
            if let file {
                guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
                let keyData: Data
                if let keys {
                    guard let data = FileManager.default.contents(atPath: keys) else { throw ValidationError("cannot read \(keys)") }
                    keyData = data
                } else {
                    // Convenient, not independent: an auditor keeps the keys saved apart and passes --keys.
                    FileHandle.standardError.write(
                        Data("warning: no --keys: checking with the keys the gateway publishes now, not keys saved independently\n".utf8))
                    keyData = try await AdminClient(gateway, path: AuditCommand.keysPath).send(.GET, "")
                }
                guard let published = try? EnvelopeCoding.decoder().decode(AuditPublicKeys.self, from: keyData) else {
                    throw ValidationError("the keys are not a Warden audit key list (save them with `warden audit keys`)")
                }
                do {
                    result = try AuditExport.verify(data, keys: published.signingKeys)
                } catch let error as AuditExportError {
                    print("\(file) cannot be read as an audit export: \(error.description)")
                    throw ExitCode(3)
                }
            } else {
                let body = try await AdminClient(gateway, path: AuditCommand.path).send(
                    .GET, "/verify" + (org.map { "?org=\(SecretCommand.escape($0))" } ?? ""))
                if json { return print(String(decoding: body, as: UTF8.self)) }
                result = try EnvelopeCoding.decoder().decode(AuditVerification.self, from: body)
            }
            if json {
                print(String(decoding: try EnvelopeCoding.encoder().encode(result), as: UTF8.self))
                if !result.intact { throw ExitCode(3) }
                return
            }
            let chain = result.org.map { "org \($0)" } ?? "the platform"
            let source = file.map { "the export \($0) of \(chain)" } ?? "the audit record of \(chain)"
            if result.intact {
                let at = result.signedAt.map { " at \($0.formatted(.iso8601))" } ?? ""
                let signed = result.signedThrough.map { ", signed through record \($0)\(at) (\(result.checkpoints ?? 0) checkpoints)" } ?? ""
                let start = result.startsAfter.map { "; records 1–\($0) were removed by retention" } ?? ""
                return print("\(source) is intact: \(result.records) records\(signed)\(start)")
            }
            print("\(source) is NOT intact at record \(result.brokenAt ?? 0): \(result.problem ?? "")")
            throw ExitCode(3)
        }
    }

    static let keysPath = "/.well-known/warden-audit-keys"

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an org's chain to a file that verifies on its own (`warden audit verify --file`).",
            discussion: "The chain's head is signed first, so the export ends at a checkpoint. Progress goes to standard error.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (none: the platform's own record).") var org: String?
        @Option(help: "ndjson or csv.") var format = "ndjson"
        @Option(help: "Write here (default: standard output).") var out: String?

        func run() async throws {
            guard let format = AuditExport.Format(rawValue: format) else { throw ValidationError("--format is ndjson or csv") }
            let client = AdminClient(gateway, path: AuditCommand.path)
            let orgQuery = org.map { "org=\(SecretCommand.escape($0))" } ?? ""
            let signed = try EnvelopeCoding.decoder().decode(
                AuditCheckpointResult.self, from: try await client.send(.POST, "/checkpoint?" + orgQuery))
            let through = signed.checkpoint?.position ?? 0
            let output: FileHandle
            if let out {
                guard FileManager.default.createFile(atPath: out, contents: nil), let handle = FileHandle(forWritingAtPath: out) else {
                    throw ValidationError("cannot write \(out)")
                }
                output = handle
            } else {
                output = FileHandle.standardOutput
            }
            var after: Int64 = 0
            var first = true
            var written = 0
            while after < through {
                let page = try EnvelopeCoding.decoder().decode(
                    AuditChainPage.self, from: try await client.send(.GET, "/records?\(orgQuery)&after=\(after)&limit=5000"))
                if first {
                    output.write(AuditExport.header(org: org, base: page.base, format: format))
                    first = false
                }
                let records = page.records.filter { $0.position <= through }
                guard let last = records.last else { break }
                output.write(
                    AuditExport.page(
                        AuditChainPage(records: records, checkpoints: page.checkpoints, base: nil, next: nil), format: format))
                written += records.count
                after = last.position
                FileHandle.standardError.write(Data("exported \(written) records (through \(after) of \(through))\n".utf8))
                if page.next == nil { break }
            }
            if first { output.write(AuditExport.header(org: org, base: nil, format: format)) }
            if out != nil { try output.close() }
            FileHandle.standardError.write(Data("\(written) records exported, ending at the checkpoint of record \(through)\n".utf8))
        }
    }

    struct Retention: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set how long an org's records are kept (platform admin).",
            discussion:
                "Older records are removed as whole leading segments, up to a signed checkpoint that becomes the chain's start, so the rest still verifies."
        )
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (none: the platform's own record).") var org: String?
        @Option(help: "Keep records this many days.") var days: Int?
        @Flag(help: "Keep records for good.") var forever = false

        func run() async throws {
            guard (days != nil) != forever else { throw ValidationError("give --days N or --forever") }
            var fields: [String: JSONField] = ["days": days.map { .int($0) } ?? .null]
            if let org { fields["org"] = .string(org) }
            _ = try await AdminClient(gateway, path: AuditCommand.path).send(.PUT, "/retention", body: .object(fields))
            let chain = org.map { "org \($0)" } ?? "the platform"
            print(days.map { "the audit record of \(chain) keeps records for \($0) days" } ?? "the audit record of \(chain) keeps records for good")
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow records as they are stored (checks every second; Ctrl-C stops).",
            discussion: "Starts after the newest record, or after --after N. SIEMs can instead subscribe to warden.audit.stored.<org> on NATS.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org (none: the platform's own record).") var org: String?
        @Option(help: "Start after this record position (default: the newest).") var after: Int?
        @Flag(help: "Print each record as a JSON line.") var json = false

        func run() async throws {
            let client = AdminClient(gateway, path: AuditCommand.path)
            let orgQuery = org.map { "org=\(SecretCommand.escape($0))" } ?? ""
            var position = Int64(after ?? 0)
            if after == nil {
                let newest = try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: try await client.send(.GET, "?limit=1&" + orgQuery))
                position = newest.records.first?.position ?? 0
            }
            FileHandle.standardError.write(Data("following the audit record after record \(position)\n".utf8))
            while !Task.isCancelled {
                let page = try EnvelopeCoding.decoder().decode(
                    AuditChainPage.self, from: try await client.send(.GET, "/records?\(orgQuery)&after=\(position)&limit=1000"))
                for record in page.records {
                    position = record.position
                    guard let event = AuditEventReader.stored(record.body) else { continue }
                    if json {
                        let line = AuditRecord(position: record.position, hash: record.hash, previousHash: record.previousHash, event: event)
                        FileHandle.standardOutput.write(try EnvelopeCoding.encoder().encode(line) + Data("\n".utf8))
                    } else {
                        let fields = [
                            String(record.position), event.time.formatted(.iso8601), event.action, event.outcome.rawValue, event.actor, event.target,
                        ]
                        FileHandle.standardOutput.write(Data((fields.joined(separator: "  ") + "\n").utf8))
                    }
                }
                if page.next == nil { try await Task.sleep(for: .seconds(1)) }
            }
        }
    }

    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the public keys audit checkpoints are signed with (JSON; save it for `warden audit verify --file --keys`).")
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            print(String(decoding: try await AdminClient(gateway, path: AuditCommand.keysPath).send(.GET, ""), as: UTF8.self))
        }
    }

    struct Sinks: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "An org's webhook sinks: endpoints (a SIEM's) that get every stored record, in order, at least once.",
            subcommands: [SetSinks.self, ShowSinks.self])
    }

    struct SetSinks: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set the org's sinks from a JSON file (kept in the vault; replaces the list).",
            discussion: """
                {"sinks": [{"id": "siem", "url": "https://collector.example/warden", "secret": "…", "from": "now"}]}
                A new sink starts after the newest record ("now") or at the chain's start ("start"); a sink kept by id keeps its position.
                """)
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Option(name: [.customShort("f"), .long], help: "The JSON file ('-': standard input).") var file: String

        func run() async throws {
            let data = try InputFile.contents(file)
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(ApprovalsCommand.path(org))/audit-sinks").send(.PUT, "", json: data)
            try ShowSinks.print(body, json: false)
        }
    }

    struct ShowSinks: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Show the org's sinks (URLs and secrets masked) and how far each got.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Flag(help: "JSON instead of a table.") var json = false

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(ApprovalsCommand.path(org))/audit-sinks").send(.GET, "")
            try Self.print(body, json: json)
        }

        static func print(_ body: Data, json: Bool) throws {
            guard !json else { return Swift.print(String(decoding: body, as: UTF8.self)) }
            let view = try EnvelopeCoding.decoder().decode(AuditSinksView.self, from: body)
            guard !view.sinks.isEmpty else { return Swift.print("no audit sinks") }
            Swift.print("SINK\tURL\tDELIVERED THROUGH\tFAILED ATTEMPTS\tLAST ERROR")
            for sink in view.sinks {
                let status = view.status.first { $0.id == sink.id }
                Swift.print(
                    "\(sink.id)\t\(sink.url)\t\(status.map { "record \($0.deliveredThrough)" } ?? "-")\t\(status?.attempts ?? 0)\t\(status?.lastError ?? "-")"
                )
            }
        }
    }

    struct Continuity: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Whether an org's requests are refused (the default) or run unrecorded while audit is unavailable.",
            discussion: """
                With the audit stream down and the gateway's spool full, requests are refused: nothing runs unrecorded. An org that \
                chooses "continue" keeps working instead; each gap goes on its record afterwards (audit.unrecorded: how many requests, when). \
                Admin changes are always refused while audit is unavailable.
                """)
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Option(help: "refuse or continue (none: show the setting).") var whenUnavailable: String?

        func run() async throws {
            let client = AdminClient(gateway, path: "/admin/v1/orgs/\(ApprovalsCommand.path(org))/audit-continuity")
            if let whenUnavailable, AuditContinuity.Choice(rawValue: whenUnavailable) == nil {
                throw ValidationError("--when-unavailable is refuse or continue")
            }
            let body =
                if let whenUnavailable {
                    try await client.send(.PUT, "", body: .object(["whenUnavailable": .string(whenUnavailable)]))
                } else {
                    try await client.send(.GET, "")
                }
            let setting = try EnvelopeCoding.decoder().decode(AuditContinuity.self, from: body)
            let by = setting.setBy.map { " (set by \($0))" } ?? ""
            switch setting.whenUnavailable {
            case .refuse: print("org \(org): requests are refused while audit is unavailable\(by)")
            case .continue: print("org \(org): requests run unrecorded while audit is unavailable, and each gap is recorded afterwards\(by)")
            }
        }
    }
}
