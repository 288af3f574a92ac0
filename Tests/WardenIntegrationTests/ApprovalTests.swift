import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import PostgresNIO
import Testing
import WardenContracts
import WardenGateway
import WardenServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// Calls that wait for people, end to end: the official Python MCP client calls a tool an `approve`
/// rule covers, approvers decide with `warden approvals` in other processes, and a stdio server
/// counts how often the tool really ran.
@Suite(.serialized) struct ApprovalTests {
    static let policy = """
        rules:
          - {id: reading, effect: allow, tools: [mail__read_inbox]}
          - {id: no-outsiders, effect: deny, tools: [send_mail], when: [{arg: $.to, glob: "*@evil.example"}]}
          - id: two-approvers
            effect: approve
            tools: [send_mail]
            when: [{arg: $.subject, equals: quorum}]
            approval: {roles: [approver], count: 2}
          - id: quick-expiry
            effect: approve
            tools: [send_mail]
            when: [{arg: $.subject, equals: expire-me}]
            approval: {roles: [approver], expires: 1m}
          - id: mail-needs-approval
            effect: approve
            tools: [send_mail]
            approval: {roles: [approver]}
            obligations: {redact: [$.password]}

        """

    /// A mesh with the approvals service, the mail server, and two approvers of org `acme`.
    struct Desk {
        let mesh: TestMesh
        let runs: URL
        let approvers: [String]
        let tokens: [String]

        func warden(_ arguments: [String], as token: String? = nil, url: String? = nil, succeeds: Bool = true) async throws -> String {
            let (status, output) = try await runWarden(
                arguments, url: url ?? mesh.gatewayURL, adminToken: TestMesh.adminToken,
                environment: token.map { ["WARDEN_APPROVER_TOKEN": $0] } ?? [:])
            #expect((status == 0) == succeeds, "warden \(arguments.joined(separator: " ")): \(output)")
            return output
        }

        /// Starts an agent's call in its own process (it waits while the request is pending).
        func call(_ arguments: String, tool: String = "mail__send_mail", url: String? = nil, progress: Bool = false) throws -> ChildProcess {
            let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/mcp_approval_check.py").path
            return try ChildProcess(
                name: "approval-call", executable: URL(fileURLWithPath: try StdioServerTests.python),
                arguments: [script, (url ?? mesh.gatewayURL) + "/mcp", tool, arguments] + (progress ? ["--progress"] : []),
                environment: TestMesh.clientEnvironment)
        }

        /// What a call process printed, once it ended.
        func report(_ call: ChildProcess, timeout: Duration = .seconds(120), completes: Bool = true) async -> [String: Any] {
            let status = await call.waitForExit(timeout: timeout)
            let line = call.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
            let report = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
            if completes { #expect(status == 0 && !report.isEmpty, "the call process: \(call.output)") }
            return report
        }

        /// Waits until the mail server is ready on the gateway at `url`.
        func ready(_ url: String) async {
            let ready = await eventually(timeout: .seconds(60)) {
                let body = (try? await CredentialInjectionTests().admin(mesh, .GET, "/admin/v1/servers", url: url))?.body ?? ""
                return body.contains("\"ready\"") && body.contains("\"tools\":2")
            }
            #expect(ready, "the mail server is ready on \(url)")
        }

        func requests(as token: String, _ extra: [String] = []) async throws -> [ApprovalRequest] {
            let json = try await warden(["approvals", "list", "--json"] + extra, as: token)
            return (try? EnvelopeCoding.decoder().decode(ApprovalRequestList.self, from: Data(json.utf8)).requests) ?? []
        }

        /// The id of the pending request whose arguments mention `subject`, once it is open.
        func pending(_ subject: String, as token: String? = nil) async throws -> String {
            var found: String?
            let opened = await eventually(timeout: .seconds(30)) {
                found = try? await requests(as: token ?? tokens[0]).first { $0.arguments.contains(subject) && $0.state == .pending }?.id
                return found != nil
            }
            #expect(opened, "a pending request for \(subject)")
            return found ?? "none"
        }

        var executions: [String] {
            ((try? String(contentsOf: runs, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
    }

    func withDesk(
        gateways: Int = 1, wait: Int = 30, gatewayEnvironment: [String: String] = [:], audit: Bool = false,
        _ body: (Desk, [String]) async throws -> Void
    ) async throws {
        try await withMesh { mesh in
            var urls = [mesh.gatewayURL]
            try mesh.start(.gateway, extra: ["WARDEN_APPROVAL_WAIT_SECONDS": "\(wait)"].merging(gatewayEnvironment) { $1 })
            for index in 1..<max(gateways, 1) {
                let port = freePort()
                try mesh.start(
                    .gateway, name: "gateway-\(index + 1)", extra: ["WARDEN_HTTP_PORT": "\(port)", "WARDEN_APPROVAL_WAIT_SECONDS": "\(wait)"])
                urls.append("http://127.0.0.1:\(port)")
            }
            try mesh.start(.approvals)
            if audit { try mesh.start(.audit) }
            try await mesh.withAgent {
                let runs = FileManager.default.temporaryDirectory.appendingPathComponent("approval-runs-\(UUID().uuidString)")
                _ = FileManager.default.createFile(atPath: runs.path, contents: nil)
                defer { try? FileManager.default.removeItem(at: runs) }
                let setup = Desk(mesh: mesh, runs: runs, approvers: [], tokens: [])
                let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/approval_tools_server.py").path
                _ = try await setup.warden([
                    "server", "add", "mail", "--org", "acme", "--command", try StdioServerTests.python, "--arg", script, "--env",
                    "APPROVAL_RUNS_FILE=\(runs.path)",
                ])
                _ = try await setup.warden(["policy", "apply", "--org", "acme", "-f", try PolicyEnforcementTests().file(Self.policy)])
                var approvers: [String] = []
                var tokens: [String] = []
                for name in ["ann", "bob"] {
                    let id = try await setup.warden(["user", "add", "--org", "acme", "--email", "\(name)@acme.example", "--role", "approver"])
                    approvers.append(id)
                    tokens.append(try await setup.warden(["user", "token", "--org", "acme", id]))
                }
                let desk = Desk(mesh: mesh, runs: runs, approvers: approvers, tokens: tokens)
                for url in urls { await desk.ready(url) }
                try await body(desk, urls)
            }
        }
    }

    @Test func callsWaitForApproversAndRunOnceAsTheyDecide() async throws {
        try await withDesk(audit: true) { desk, _ in
            let (ann, bob) = (desk.tokens[0], desk.tokens[1])
            // Approvers follow the live channel; an approver of another org sees none of it.
            let watcher = try ChildProcess(
                name: "approvals-watch", executable: try TestEnvironment.binaries.appendingPathComponent("warden"),
                arguments: ["approvals", "watch", "--json"], environment: ["WARDEN_URL": desk.mesh.gatewayURL, "WARDEN_APPROVER_TOKEN": bob])
            _ = try await desk.warden(["org", "create", "globex"])
            let outsider = try await desk.warden(["user", "add", "--org", "globex", "--email", "eve@globex.example", "--role", "approver"])
            let outsiderToken = try await desk.warden(["user", "token", "--org", "globex", outsider])
            let outsiderWatch = try ChildProcess(
                name: "approvals-watch-globex", executable: try TestEnvironment.binaries.appendingPathComponent("warden"),
                arguments: ["approvals", "watch", "--json"],
                environment: ["WARDEN_URL": desk.mesh.gatewayURL, "WARDEN_APPROVER_TOKEN": outsiderToken])

            // The same over a WebSocket; without a valid token the socket is closed (1008).
            func webSocket(_ token: String, count: Int) throws -> ChildProcess {
                try ChildProcess(
                    name: "ws-watch", executable: URL(fileURLWithPath: try StdioServerTests.python),
                    arguments: [
                        try TestEnvironment.repository.appendingPathComponent("Tests/Python/ws_watch.py").path,
                        desk.mesh.gatewayURL.replacingOccurrences(of: "http://", with: "ws://") + "/approvals/v1/ws", token, "\(count)",
                    ])
            }
            let socket = try webSocket(ann, count: 2)
            let refusedSocket = try webSocket("not-a-token", count: 1)
            #expect(await eventually(timeout: .seconds(30)) { socket.output.contains("connected") }, "\(socket.output)")
            #expect(socket.output.range(of: #"connected [A-Za-z0-9-]{16,}"#, options: .regularExpression) != nil, "an X-Request-Id: \(socket.output)")
            #expect(await refusedSocket.waitForExit(timeout: .seconds(30)) != nil)
            #expect(refusedSocket.output.contains(#""closed": 1008"#), "\(refusedSocket.output)")

            // A call that nobody decides: pending when the wait ends, expired after its minute.
            let expiring = try desk.call(#"{"to": "x@acme.example", "subject": "expire-me"}"#)
            let expiringStarted = ContinuousClock.now
            // Opened before the next one (the approvers' socket below hears both openings, in order).
            _ = try await desk.pending("expire-me")

            // Approved: the call blocks (with progress), then returns the tool's real result.
            let hello = try desk.call(#"{"to": "team@acme.example", "subject": "hello", "password": "hunter2"}"#, progress: true)
            let helloID = try await desk.pending("hello")
            let shown = try await desk.warden(["approvals", "show", helloID], as: ann)
            #expect(shown.contains("mail-needs-approval") && shown.contains("[redacted]") && !shown.contains("hunter2"), "\(shown)")
            #expect(try await desk.warden(["approvals", "approve", helloID], as: ann).contains("approved \(helloID)"))
            let approved = await desk.report(hello)
            // The WebSocket heard both requests open.
            #expect(await socket.waitForExit(timeout: .seconds(30)) == 0, "\(socket.output)")
            let heard = socket.output.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap {
                try? EnvelopeCoding.decoder().decode(ApprovalChange.self, from: Data($0.utf8))
            }
            #expect(heard.map(\.event) == ["opened", "opened"] && heard.contains { $0.request.id == helloID }, "\(socket.output)")
            #expect(approved["ok"] as? Bool == true, "\(approved)")
            #expect((approved["text"] as? String)?.contains("sent 'hello' to team@acme.example (run 1)") == true, "\(approved)")
            #expect((approved["progress"] as? Int ?? 0) >= 1, "progress while waiting: \(approved)")
            let meta = (approved["meta"] as? [String: Any])?["warden/approval"] as? [String: Any]
            #expect(meta?["id"] as? String == helloID && meta?["approvedBy"] as? [String] == [desk.approvers[0]], "\(approved)")
            // The same call again: the stored outcome, not a second run.
            let again = await desk.report(try desk.call(#"{"to": "team@acme.example", "subject": "hello", "password": "hunter2"}"#))
            #expect((again["text"] as? String)?.contains("(run 1)") == true, "\(again)")
            #expect(desk.executions.count == 1)
            _ = try await desk.warden(["approvals", "approve", helloID], as: bob, succeeds: false)

            // Rejected: a tool error with the reason, and nothing runs.
            let rejected = try desk.call(#"{"to": "team@acme.example", "subject": "reject-me"}"#)
            let rejectedID = try await desk.pending("reject-me")
            _ = try await desk.warden(["approvals", "reject", rejectedID, "--reason", "not on a Sunday"], as: bob)
            let refused = await desk.report(rejected)
            #expect(refused["isError"] as? Bool == true, "\(refused)")
            #expect((refused["text"] as? String)?.contains("rejected by \(desk.approvers[1]): not on a Sunday") == true, "\(refused)")

            // Modified: policy checks the approver's arguments; the server gets them; the agent is told.
            let modified = try desk.call(#"{"to": "everyone@acme.example", "subject": "modify-me"}"#)
            let modifiedID = try await desk.pending("modify-me")
            let denied = try await desk.warden(
                ["approvals", "approve", modifiedID, "--arguments", #"{"to": "boss@evil.example", "subject": "modify-me"}"#], as: ann, succeeds: false
            )
            #expect(denied.contains("policy denies"), "\(denied)")
            _ = try await desk.warden(
                ["approvals", "approve", modifiedID, "--arguments", #"{"to": "team@acme.example", "subject": "modify-me"}"#], as: ann)
            let ran = await desk.report(modified)
            let ranText = ran["text"] as? String ?? ""
            #expect(ranText.contains("sent 'modify-me' to team@acme.example") && ranText.contains("an approver changed"), "\(ran)")
            #expect(desk.executions.last?.contains("team@acme.example") == true && !desk.executions.contains { $0.contains("everyone@") })

            // Quorum of two: one person counts once; the second approver completes it.
            let quorum = try desk.call(#"{"to": "team@acme.example", "subject": "quorum"}"#)
            let quorumID = try await desk.pending("quorum")
            #expect(try await desk.warden(["approvals", "approve", quorumID], as: ann).contains("1 of 2"))
            #expect(try await desk.warden(["approvals", "approve", quorumID], as: ann, succeeds: false).contains("already approved"))
            _ = try await desk.warden(["approvals", "approve", quorumID], as: bob)
            #expect((await desk.report(quorum)["text"] as? String)?.contains("sent 'quorum'") == true)

            // Approve and remember (any arguments, 20 s): the next calls pass at once, then ask again.
            let remembered = try desk.call(#"{"to": "team@acme.example", "subject": "remember-1"}"#)
            let rememberedID = try await desk.pending("remember-1")
            let rememberedAt = ContinuousClock.now
            _ = try await desk.warden(["approvals", "approve", rememberedID, "--remember", "20s", "--any-arguments"], as: ann)
            #expect(await desk.report(remembered)["ok"] as? Bool == true)
            let passes = await desk.report(try desk.call(#"{"to": "team@acme.example", "subject": "remember-2"}"#))
            #expect((passes["text"] as? String)?.contains("sent 'remember-2'") == true, "\(passes)")
            // Nobody was asked; the call is on record as approved by the remembered approval.
            let rememberedRuns = try await desk.requests(as: ann, ["--all"]).filter { $0.arguments.contains("remember-2") }
            #expect(
                rememberedRuns.count == 1 && rememberedRuns.first?.state == .executed && rememberedRuns.first?.votes.isEmpty == true
                    && rememberedRuns.first?.reason?.contains("approved by \(desk.approvers[0]) for a while (request \(rememberedID))") == true,
                "\(rememberedRuns)")
            try await Task.sleep(until: rememberedAt + .seconds(21))
            let asksAgain = try desk.call(#"{"to": "team@acme.example", "subject": "remember-3"}"#)
            let askedID = try await desk.pending("remember-3")
            _ = try await desk.warden(["approvals", "reject", askedID], as: ann)
            #expect(await desk.report(asksAgain)["isError"] as? Bool == true)

            // The first call was told it is pending; after its minute the same call hears "expired".
            let pendingReport = await desk.report(expiring)
            #expect((pendingReport["text"] as? String)?.contains("is waiting for approval") == true, "\(pendingReport)")
            try await Task.sleep(until: expiringStarted + .seconds(62))
            let expired = await desk.report(try desk.call(#"{"to": "x@acme.example", "subject": "expire-me"}"#))
            #expect((expired["text"] as? String)?.contains("expired") == true, "\(expired)")
            #expect(desk.executions.count == 5, "hello, modify-me, quorum, remember-1, remember-2 and nothing else: \(desk.executions)")

            // Org B's approver: nothing of org A on any channel, and cannot decide it.
            let isolated = try desk.call(#"{"to": "team@acme.example", "subject": "isolation"}"#)
            let isolatedID = try await desk.pending("isolation")
            #expect(try await desk.requests(as: outsiderToken, ["--all"]).isEmpty)
            let hidden = try await desk.warden(["approvals", "show", helloID], as: outsiderToken, succeeds: false)
            #expect(hidden.contains("not_found"), "\(hidden)")
            let foreign = try await desk.warden(["approvals", "approve", isolatedID], as: outsiderToken, succeeds: false)
            #expect(foreign.contains("not_found"), "\(foreign)")
            #expect(try await desk.requests(as: ann).contains { $0.id == isolatedID && $0.state == .pending }, "still pending")
            _ = try await desk.warden(["approvals", "reject", isolatedID], as: ann)
            _ = await desk.report(isolated)
            #expect(watcher.isRunning && outsiderWatch.isRunning, "both live channels stayed connected")
            await watcher.stop()
            await outsiderWatch.stop()
            #expect(watcher.output.contains(helloID) && watcher.output.contains("\"event\":\"expired\""), "\(watcher.output.suffix(2000))")
            #expect(outsiderWatch.output.contains("watching approval requests"), "\(outsiderWatch.output.suffix(2000))")
            #expect(!outsiderWatch.output.contains("apr_"), "\(outsiderWatch.output.suffix(2000))")

            // Every change is on record with who made it.
            try await withDatabaseClient(desk.mesh.database, as: .approvals) { client in
                let rows = try await client.query(
                    "SELECT actor, event FROM approvals.changes WHERE request_id = \(helloID) ORDER BY id", logger: TestEnvironment.logger)
                var changes: [String] = []
                for try await (actor, event) in rows.decode((String, String).self) { changes.append("\(event) by \(actor.prefix(8))") }
                #expect(changes == ["opened by agent:ag", "approved by user:usr", "running by gateway:", "executed by gateway:"], "\(changes)")
            }
            // And on the audit record, with the approver named.
            var audited: [AuditRecord] = []
            let recorded = await eventually(timeout: .seconds(30)) {
                let json = (try? await desk.warden(["audit", "query", "--org", "acme", "--action", "approval.approved", "--json"])) ?? ""
                audited = (try? EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: Data(json.utf8)).records) ?? []
                return audited.contains { $0.event.target == helloID }
            }
            #expect(recorded && audited.first { $0.event.target == helloID }?.event.actor == "user:" + desk.approvers[0], "\(audited)")

            // Approver tokens are for approvers (and admins, owners), and stop working when their user is disabled.
            let member = try await desk.warden(["user", "add", "--org", "acme", "--email", "mo@acme.example", "--role", "member"])
            let refusedToken = try await desk.warden(["user", "token", "--org", "acme", member], succeeds: false)
            #expect(refusedToken.contains("approver tokens are for"), "\(refusedToken)")
            _ = try await desk.warden(["user", "disable", "--org", "acme", desk.approvers[1]])
            let disabled = try await desk.warden(["approvals", "list"], as: bob, succeeds: false)
            #expect(disabled.contains("unauthorized"), "\(disabled)")
        }
    }

    @Test func aDecisionSurvivesRestartsAndRacingRetriesRunTheCallOnce() async throws {
        try await withDesk(gateways: 2, wait: 60) { desk, urls in
            let ann = desk.tokens[0]
            // Pending while the approvals service restarts, then the gateway the agent waits on.
            let waiting = try desk.call(#"{"to": "team@acme.example", "subject": "restart"}"#)
            let restartID = try await desk.pending("restart")
            await desk.mesh.processes["approvals"]?.stop()
            try desk.mesh.start(.approvals)
            await desk.mesh.processes["gateway"]?.stop()
            _ = await desk.report(waiting, completes: false)
            try desk.mesh.start(.gateway, extra: ["WARDEN_APPROVAL_WAIT_SECONDS": "60"])
            await desk.ready(urls[0])
            #expect(try await desk.warden(["approvals", "approve", restartID], as: ann).contains("approved \(restartID)"))
            // The agent retries: the call runs once; a second retry gets its stored result.
            let retried = await desk.report(try desk.call(#"{"to": "team@acme.example", "subject": "restart"}"#))
            #expect((retried["text"] as? String)?.contains("sent 'restart' to team@acme.example (run 1)") == true, "\(retried)")
            let again = await desk.report(try desk.call(#"{"to": "team@acme.example", "subject": "restart"}"#, url: urls[1]))
            #expect((again["text"] as? String)?.contains("(run 1)") == true, "\(again)")
            #expect(desk.executions.count == 1, "\(desk.executions)")

            // Ten retries of one call through two replicas, waiting when the approval comes: one run.
            let racers = try (0..<10).map { index in
                try desk.call(#"{"to": "team@acme.example", "subject": "race"}"#, url: urls[index % 2])
            }
            let raceID = try await desk.pending("race")
            try await Task.sleep(for: .seconds(8))
            #expect(try await desk.requests(as: ann, ["--all"]).filter { $0.arguments.contains("race") }.count == 1, "one request for one call")
            _ = try await desk.warden(["approvals", "approve", raceID], as: ann)
            var texts: [String] = []
            for racer in racers { texts.append(await desk.report(racer)["text"] as? String ?? "") }
            #expect(texts.allSatisfy { $0.contains("sent 'race' to team@acme.example (run 2)") }, "\(texts)")
            #expect(desk.executions.count == 2, "\(desk.executions)")
        }
    }

    @Test func anApproverDecidesFromTheInboxOnAPhone() async throws {
        try await withDesk { desk, _ in
            // The page's own safeguards: nothing but its files, no framing.
            let page = try await HTTPClient.shared.execute(HTTPClientRequest(url: desk.mesh.gatewayURL + "/approvals"), timeout: .seconds(10))
            let html = String(buffer: try await page.body.collect(upTo: 1 << 20))
            #expect(page.status == .ok && html.contains("Warden approvals"))
            let headers = page.headers
            #expect(headers["Content-Security-Policy"].first?.contains("default-src 'none'") == true, "\(headers)")
            #expect(headers["Content-Security-Policy"].first?.contains("frame-ancestors 'none'") == true)
            #expect(headers["X-Frame-Options"].first == "DENY")

            let screenshot = try TestEnvironment.repository.appendingPathComponent(".build/approvals-inbox.png")
            try? FileManager.default.removeItem(at: screenshot)
            let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/inbox_check.py").path
            let browser = try ChildProcess(
                name: "inbox-check", executable: URL(fileURLWithPath: try StdioServerTests.python),
                arguments: [script, desk.mesh.gatewayURL, desk.tokens[0], screenshot.path])
            // The approver is signed in to an empty inbox; the request then arrives on its own.
            #expect(await eventually(timeout: .seconds(60)) { browser.output.contains("signed in") }, "\(browser.output.suffix(3000))")
            let waiting = try desk.call(#"{"to": "team@acme.example", "subject": "from-the-phone"}"#)
            let id = try await desk.pending("from-the-phone")
            let status = await browser.waitForExit(timeout: .seconds(120))
            let line = browser.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
            let seen = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
            #expect(status == 0, "\(browser.output.suffix(3000))")
            let text = seen["text"] as? String ?? ""
            #expect(text.contains("mail__send_mail") && text.contains("from-the-phone") && text.contains("mail-needs-approval"), "\(seen)")
            #expect(seen["fits"] as? Bool == true && seen["width"] as? Int == 390, "the page fits a phone's width: \(seen)")
            #expect((seen["status"] as? String)?.contains("approved") == true, "\(seen)")
            let png = (try? Data(contentsOf: screenshot)) ?? Data()
            #expect(png.count > 1000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "a screenshot at \(screenshot.path)")
            let ran = await desk.report(waiting)
            #expect((ran["text"] as? String)?.contains("sent 'from-the-phone'") == true, "\(ran) \(id)")
        }
    }

    @Test func approversHearInSlackAndWebhooksAndASignedSlackClickDecides() async throws {
        try await withDesk(gatewayEnvironment: ["WARDEN_APPROVAL_NOTICE_ATTEMPTS": "3", "WARDEN_APPROVAL_LOCAL_ENDPOINTS": "true"]) { desk, _ in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("notices-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let log = directory.appendingPathComponent("log")
            let receiver = try ChildProcess(
                name: "notice-receiver", executable: URL(fileURLWithPath: try StdioServerTests.python),
                arguments: [
                    try TestEnvironment.repository.appendingPathComponent("Tests/Python/notice_receiver.py").path,
                    directory.appendingPathComponent("port").path, log.path,
                ])
            #expect(await eventually(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: directory.appendingPathComponent("port").path) })
            let port = try String(contentsOf: directory.appendingPathComponent("port"), encoding: .utf8)
            let base = "http://127.0.0.1:\(port)"
            let slackSecret = "slack-signing-secret-0123456789"
            let hookSecret = "webhook-secret-0123456789abcdef"
            func setChannels(webhook: String) async throws {
                let file = directory.appendingPathComponent("channels.json")
                let channels = ApprovalChannels(
                    slackWebhookURL: base + "/slack", slackSigningSecret: slackSecret, slackUsers: ["U_ANN": desk.approvers[0]],
                    webhookURL: base + webhook, webhookSecret: hookSecret)
                try EnvelopeCoding.encoder().encode(channels).write(to: file)
                let shown = try await desk.warden(["approvals", "channels", "set", "--org", "acme", "-f", file.path])
                #expect(!shown.contains(slackSecret) && !shown.contains(hookSecret) && !shown.contains("/slack"), "\(shown)")
            }
            try await setChannels(webhook: "/hook")
            func deliveries() -> [[String: Any]] {
                ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
            }

            // A new request reaches Slack (with its buttons) and the webhook (after two failures).
            let call = try desk.call(#"{"to": "team@acme.example", "subject": "via-slack"}"#)
            let id = try await desk.pending("via-slack")
            let delivered = await eventually(timeout: .seconds(30)) {
                deliveries().contains { $0["path"] as? String == "/slack" && ($0["body"] as? String)?.contains(id) == true }
                    && deliveries().contains {
                        $0["path"] as? String == "/hook" && $0["status"] as? Int == 200 && ($0["body"] as? String)?.contains(id) == true
                    }
            }
            #expect(delivered, "\(deliveries())")
            let slack = try #require(deliveries().first { $0["path"] as? String == "/slack" && ($0["body"] as? String)?.contains(id) == true })
            let slackBody = slack["body"] as? String ?? ""
            #expect(slackBody.contains(#""action_id":"approve""#) && slackBody.contains(#""action_id":"reject""#), "\(slackBody)")
            #expect(slackBody.contains(#""value":"\#(id)#0""#), "the buttons name the request and the arguments' revision: \(slackBody)")
            let hooks = deliveries().filter { $0["path"] as? String == "/hook" && ($0["body"] as? String)?.contains(id) == true }
            #expect(hooks.map { $0["status"] as? Int ?? 0 } == [500, 500, 200], "retried until delivered, once: \(hooks)")
            let hook = try #require(hooks.last)
            let headers = hook["headers"] as? [String: String] ?? [:]
            let timestamp = headers["Warden-Timestamp"] ?? ""
            let expected = WebhookSignature.v1(secret: hookSecret, timestamp: timestamp, body: Data((hook["body"] as? String ?? "").utf8))
            #expect(headers["Warden-Signature"] == "v1=" + expected && headers["Warden-Event"] == "approval.opened", "\(headers)")

            // Slack clicks: forged, stale or unmapped ones are refused; a signed one approves, once.
            func click(_ user: String, secret: String = slackSecret, age: TimeInterval = 0) -> (body: String, headers: [String: String]) {
                let payload = #"{"type":"block_actions","user":{"id":"\#(user)"},"actions":[{"action_id":"approve","value":"\#(id)"}]}"#
                let body = "payload=" + (payload.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
                let timestamp = String(Int(Date().timeIntervalSince1970 - age))
                let mac = HMAC<SHA256>.authenticationCode(
                    for: Data("v0:\(timestamp):\(body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
                return (body, ["X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=" + mac.map { String(format: "%02x", $0) }.joined()])
            }
            func post(_ signed: (body: String, headers: [String: String])) async throws -> (Int, String) {
                var request = HTTPClientRequest(url: desk.mesh.gatewayURL + "/approvals/slack/acme/actions")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                for (name, value) in signed.headers { request.headers.add(name: name, value: value) }
                request.body = .bytes(ByteBuffer(string: signed.body))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 16)))
            }
            #expect(try await post(click("U_ANN", secret: "not-the-signing-secret-at-all")).0 == 401, "forged")
            #expect(try await post(click("U_ANN", age: 600)).0 == 401, "stale")
            #expect(try await post(click("U_EVE")).0 == 403, "a Slack user no approver is mapped to")
            let signed = click("U_ANN")
            let (status, answer) = try await post(signed)
            #expect(status == 200 && answer.contains("approved"), "\(answer)")
            #expect(try await post(signed).0 == 409, "a replayed click")
            var respelled = signed
            respelled.headers["X-Slack-Signature"] = "v0=" + (signed.headers["X-Slack-Signature"] ?? "").dropFirst(3).uppercased()
            #expect(try await post(respelled).0 == 409, "the same click with its signature spelled in capitals")
            let ran = await desk.report(call)
            #expect((ran["text"] as? String)?.contains("sent 'via-slack'") == true, "\(ran)")
            #expect((ran["meta"] as? [String: Any]).map { "\($0)" }?.contains(desk.approvers[0]) == true, "decided as the mapped approver")

            // A webhook that never answers well is dead-lettered after its attempts.
            try await setChannels(webhook: "/dead")
            let doomed = try desk.call(#"{"to": "team@acme.example", "subject": "dead-letter"}"#)
            let doomedID = try await desk.pending("dead-letter")
            var failures = ""
            let deadLettered = await eventually(timeout: .seconds(40)) {
                failures = (try? await desk.warden(["approvals", "channels", "failures", "--org", "acme"])) ?? ""
                return failures.contains(doomedID)
            }
            #expect(deadLettered && failures.contains("HTTP 500") && failures.contains("\"attempts\":3"), "\(failures)")
            #expect(deliveries().filter { $0["path"] as? String == "/dead" && ($0["body"] as? String)?.contains(doomedID) == true }.count == 3)
            _ = try await desk.warden(["approvals", "reject", doomedID], as: desk.tokens[0])
            _ = await desk.report(doomed)
            await receiver.stop()
        }
    }
}
