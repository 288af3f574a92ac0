import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import WardenContracts

/// `warden approvals list|show|approve|reject|watch`: an approver's side of calls that wait for
/// people, through the gateway's approvals API (approver token from `$WARDEN_APPROVER_TOKEN`, see
/// `warden user token`).
struct ApprovalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals",
        abstract: "List, show, approve, reject and watch calls that wait for approval (token from $WARDEN_APPROVER_TOKEN).",
        subcommands: [List.self, Show.self, Approve.self, Reject.self, Watch.self, Channels.self]
    )

    static func client(_ gateway: GatewayOptions) -> AdminClient {
        AdminClient(gateway, path: "/approvals/v1", credential: "WARDEN_APPROVER_TOKEN")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Requests you may decide (or did), newest first.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "Only this state: pending, approved, rejected, expired, running, executed (repeat; default pending).")
        var state: [String] = []
        @Flag(help: "Every state.") var all = false
        @Option(help: "At most this many.") var limit = 50
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            for name in state where ApprovalState(rawValue: name) == nil {
                throw ValidationError("'\(name)' is not a state: \(ApprovalState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() async throws {
            let states = all ? [] : (state.isEmpty ? ["pending"] : state)
            let query = (states.map { "state=\($0)" } + ["limit=\(limit)"]).joined(separator: "&")
            let body = try await ApprovalsCommand.client(gateway).send(.GET, "/requests?\(query)")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let requests = try EnvelopeCoding.decoder().decode(ApprovalRequestList.self, from: body).requests
            guard !requests.isEmpty else { return print("no \(all ? "" : states.joined(separator: " or ") + " ")approval requests for you") }
            for request in requests { print(ApprovalsCommand.line(request)) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One request: who asks, for what, under which rule, and its votes.")
        @OptionGroup var gateway: GatewayOptions
        @Argument(help: "The request id (apr_…).") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await ApprovalsCommand.client(gateway).send(.GET, "/requests/\(ApprovalsCommand.path(id))")
            if json { return print(String(decoding: body, as: UTF8.self)) }
            print(ApprovalsCommand.describe(try EnvelopeCoding.decoder().decode(ApprovalRequest.self, from: body)))
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a request; optionally with other arguments (policy checks them again), or remembered for a while.")
        @OptionGroup var gateway: GatewayOptions
        @Argument(help: "The request id (apr_…).") var id: String
        @Option(help: "Run the call with these arguments instead (a JSON object); the agent is told.") var arguments: String?
        @Option(help: "Let the same call through without asking for this long: 30m, 8h, 7d (at most 7 days).") var remember: String?
        @Flag(help: "With --remember: any arguments of the same tool by the same agent, not only this call.") var anyArguments = false
        @Option(help: "The revision you looked at (warden approvals show): refused if an approver changed the arguments since.")
        var revision: Int?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if let arguments {
                guard let object = try? JSONSerialization.jsonObject(with: Data(arguments.utf8)), object is [String: Any] else {
                    throw ValidationError("--arguments is a JSON object, like '{\"to\": \"a@example.com\"}'")
                }
            }
            if let remember, ApprovalsCommand.seconds(remember) == nil { throw ValidationError("--remember is a duration like 30m, 8h or 7d") }
            if anyArguments, remember == nil { throw ValidationError("--any-arguments goes with --remember") }
        }

        func run() async throws {
            var fields: [String] = []
            if let arguments { fields.append("\"arguments\":\(arguments)") }
            if let remember, let seconds = ApprovalsCommand.seconds(remember) {
                fields.append("\"rememberSeconds\":\(seconds)")
                if anyArguments { fields.append("\"rememberAnyArguments\":true") }
            }
            if let revision { fields.append("\"revision\":\(revision)") }
            let body = try await ApprovalsCommand.client(gateway).send(
                .POST, "/requests/\(ApprovalsCommand.path(id))/approve", json: Data("{\(fields.joined(separator: ","))}".utf8))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let request = try EnvelopeCoding.decoder().decode(ApprovalRequest.self, from: body)
            let approvals = request.votes.filter { $0.verdict == .approve }.count
            print(
                request.state == .approved
                    ? "approved \(request.id): \(request.tool) runs when the agent's call goes on"
                    : "approval recorded for \(request.id): \(approvals) of \(request.needed); it needs more approvers")
            print("  with arguments \(request.modifiedArguments ?? request.arguments)")
        }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a request; the agent sees the reason.")
        @OptionGroup var gateway: GatewayOptions
        @Argument(help: "The request id (apr_…).") var id: String
        @Option(help: "Why (the agent sees it).") var reason: String = ""
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try await ApprovalsCommand.client(gateway).send(
                .POST, "/requests/\(ApprovalsCommand.path(id))/reject", body: .object(["reason": .string(reason)]))
            if json { return print(String(decoding: body, as: UTF8.self)) }
            let request = try EnvelopeCoding.decoder().decode(ApprovalRequest.self, from: body)
            print("rejected \(request.id): \(request.tool) will not run")
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow requests as they arrive, are decided and expire (until interrupted).")
        @OptionGroup var gateway: GatewayOptions
        @Flag(help: "Print each change as one JSON line.") var json = false
        @Option(help: "Stop after this many changes (default: never).") var count: Int?

        func run() async throws {
            let client = ApprovalsCommand.client(gateway)
            var request = HTTPClientRequest(url: client.base + "/events")
            request.headers.add(name: "Authorization", value: "Bearer \(try client.bearer())")
            request.headers.add(name: "Accept", value: "text/event-stream")
            let response: HTTPClientResponse
            do {
                response = try await HTTPClient.shared.execute(request, timeout: .hours(24 * 365))
            } catch {
                throw AdminClient.Failure(description: "cannot reach the gateway at \(client.base): \(error)")
            }
            guard response.status == .ok else {
                let data = Data(buffer: try await response.body.collect(upTo: 1 << 20))
                let problem = try? JSONDecoder().decode(AdminClient.Problem.self, from: data)
                throw AdminClient.Failure(description: problem.map { "\($0.detail) (\($0.code))" } ?? "HTTP \(response.status.code)")
            }
            FileHandle.standardError.write(Data("watching approval requests at \(gateway.resolvedURL) (Ctrl-C to stop)\n".utf8))
            // Bytes until a blank line: an event (a character split across reads stays whole).
            var pending = Data()
            var seen = 0
            let separator = Data("\n\n".utf8)
            for try await buffer in response.body {
                pending.append(contentsOf: buffer.readableBytesView)
                while let end = pending.range(of: separator) {
                    let event = String(decoding: pending[pending.startIndex..<end.lowerBound], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex..<end.upperBound)
                    for line in event.split(separator: "\n") where line.hasPrefix("data: ") {
                        let data = Data(line.dropFirst(6).utf8)
                        var text = String(decoding: data, as: UTF8.self)
                        if !json, let change = try? EnvelopeCoding.decoder().decode(ApprovalChange.self, from: data) {
                            text = "\(change.event.padding(toLength: 9, withPad: " ", startingAt: 0)) \(ApprovalsCommand.line(change.request))"
                        }
                        // Written at once (not buffered): a watcher reads each change as it comes.
                        FileHandle.standardOutput.write(Data((text + "\n").utf8))
                        seen += 1
                        if let count, seen >= count { return }
                    }
                }
            }
            throw AdminClient.Failure(description: "the gateway ended the stream (the token expired or was revoked, or the gateway stopped)")
        }
    }

    struct Channels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "An org's Slack and webhook notifications of approval requests (admin token from $WARDEN_ADMIN_TOKEN).",
            subcommands: [SetChannels.self, ShowChannels.self, Failures.self])
    }

    struct SetChannels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set the org's channels from a JSON file (kept in the vault): slackWebhookURL, slackSigningSecret, slackUsers, webhookURL, "
                + "webhookSecret.")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String
        @Option(name: [.customShort("f"), .long], help: "The JSON file ('-': standard input).") var file: String

        func run() async throws {
            let data = try InputFile.contents(file)
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(ApprovalsCommand.path(org))/approval-channels").send(
                .PUT, "", json: data)
            print(String(decoding: body, as: UTF8.self))
        }
    }

    struct ShowChannels: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the org's channels (secrets as \"set\").")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(ApprovalsCommand.path(org))/approval-channels").send(.GET, "")
            print(String(decoding: body, as: UTF8.self))
        }
    }

    struct Failures: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Notices that could not be delivered after every attempt (dead letters).")
        @OptionGroup var gateway: GatewayOptions
        @Option(help: "The org.") var org: String

        func run() async throws {
            let body = try await AdminClient(gateway, path: "/admin/v1/orgs/\(ApprovalsCommand.path(org))/approval-channels/failures").send(
                .GET, "")
            print(String(decoding: body, as: UTF8.self))
        }
    }

    /// A request id as one path segment.
    static func path(_ id: String) -> String {
        id.addingPercentEncoding(withAllowedCharacters: CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? id
    }

    /// `30m`, `8h`, `7d`, `90s` → seconds (at most 7 days).
    static func seconds(_ text: String) -> Int? {
        guard let unit = text.last, let value = Int(text.dropLast()), value > 0, value <= ApprovalDecision.maximumRememberSeconds else { return nil }
        let multiplier: Int? =
            switch unit {
            case "s": 1
            case "m": 60
            case "h": 3600
            case "d": 86400
            default: nil
            }
        guard let multiplier, value * multiplier <= ApprovalDecision.maximumRememberSeconds else { return nil }
        return value * multiplier
    }

    static func line(_ request: ApprovalRequest) -> String {
        let approvals = request.votes.filter { $0.verdict == .approve }.count
        return "\(request.id)  \(request.state.rawValue)  \(request.tool)  agent \(request.agent) for \(request.user)  "
            + "\(approvals)/\(request.needed)  \(request.arguments.prefix(120))"
    }

    static func describe(_ request: ApprovalRequest) -> String {
        var lines = [
            "id          \(request.id)",
            "state       \(request.state.rawValue) (revision \(request.revision))",
            "tool        \(request.tool) (server \(request.server))",
            "agent       \(request.agent), acting for \(request.user)" + (request.client.map { ", client \($0)" } ?? ""),
            "arguments   \(request.arguments)",
            "rule        \(request.rule): \((request.approverRoles.map { "role \($0)" } + request.approverUsers.map { "user \($0)" }).joined(separator: ", ")), \(request.needed) needed",
            "created     \(request.createdAt)",
            "expires     \(request.expiresAt)",
        ]
        if let modified = request.modifiedArguments { lines.append("runs with   \(modified)") }
        for vote in request.votes { lines.append("vote        \(vote.verdict.rawValue) by \(vote.user) at \(vote.at)") }
        if let reason = request.reason { lines.append("reason      \(reason)") }
        return lines.joined(separator: "\n")
    }
}
