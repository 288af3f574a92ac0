import Crypto
import Foundation
import ServiceContextModule
import WardenContracts
import WardenMCP
import WardenPolicyEngine
import WardenServiceKit

/// Holds a tool call that policy says people must approve. It opens a request with the approvals
/// service (or joins the one open for the same call: same agent, tool and arguments), keeps the
/// client's call open while it waits (progress notifications when the client sent a progress
/// token, SSE keep-alives otherwise), and then:
/// - approved (or let through by a remembered approval): `prepare` checks what must hold before it
///   runs (an approver's arguments decided by policy again, the rate limits), then the stage takes
///   the claim to run it (one claim, whichever gateway asks first) and the pipeline runs it and
///   hands the outcome to `finish`;
/// - run already (by this or another gateway): answers with the stored outcome, never runs it again;
/// - rejected or expired: a tool error with the reason;
/// - still pending when the wait ends: a tool error naming the request; the same call retried joins it.
/// Whatever fails (the approvals service unreachable) refuses the call: nothing runs unapproved.
package struct ApprovalStage: Sendable {
    let client: ServiceClient?
    let waiters: ApprovalWaiters
    /// How long a call waits for a decision before the client is told it is pending.
    var wait: Duration = .seconds(60)
    /// How often a waiting call tells its client it is still alive.
    var keepAlive: Duration = .seconds(10)
    /// How often a waiting call reads its request back even without an announcement.
    var recheck: Duration = .seconds(5)

    /// The right to run one approved call, held by this gateway.
    struct Claim: Sendable {
        var ticket: ApprovalTicket
        var id: String
    }

    enum Verdict: Sendable {
        /// Run the call with these parameters and obligations, then `finish` the claim.
        case run(JSONValue, PolicyObligations, Claim)
        case answer(Result<JSONValue, JSONRPCError>)
    }

    /// What must hold before an approved call runs, given the parameters it would run with: the
    /// obligations it runs under, or why it does not run now.
    typealias Prepare = @Sendable (JSONValue) async -> Result<PolicyObligations, JSONRPCError>

    func run(
        _ request: ClientRequest, target: RouteTarget, approval: ApprovalRequirement, redact: [JSONPath], channel: CallChannel,
        prepare: Prepare
    ) async -> Verdict {
        let tool = request.params?["name"]?.stringValue ?? ""
        guard let client, let agent = request.caller.agent else {
            return .answer(
                .failure(
                    JSONRPCError(
                        code: JSONRPCError.Code.approvalRequired,
                        message: "\(tool) needs approval (by \(approval.approvers)); this gateway has no approvals service, so it was not run")))
        }
        let arguments = request.params?["arguments"] ?? .object([])
        var shown = arguments
        for path in redact { shown = path.replacing(in: shown, with: .string("[redacted]")) }
        let opening = ApprovalOpening(
            org: agent.org, agent: agent.agent, user: agent.user, client: agent.client, server: target.server, tool: tool, arguments: shown.jsonText,
            callKey: Self.callKey(org: agent.org, agent: agent.agent, user: agent.user, tool: tool, arguments: arguments), rule: approval.rule,
            approverRoles: approval.roles, approverUsers: approval.users, needed: approval.count, expiresSeconds: approval.expiresSeconds,
            allowSelf: approval.allowSelf)
        let started = ContinuousClock.now
        let deadline = started + wait
        var nextKeepAlive = started
        var nextRecheck = started + recheck
        let claimID = UUID().uuidString
        do throws(ServiceError) {
            var ticket = try await client.call(ApprovalEndpoints.open, opening)
            var seen = waiters.watch(ticket.id)
            defer { waiters.unwatch(ticket.id) }
            // A decision announced between opening and watching is not missed.
            if ticket.state == .pending { ticket = try await client.call(ApprovalEndpoints.ticket, ApprovalReference(id: ticket.id)) }
            while true {
                switch ticket.state {
                case .approved:
                    let params = Self.parameters(target.params, modified: ticket.modifiedArguments, original: arguments, redact: redact)
                    let obligations: PolicyObligations
                    switch await prepare(params) {
                    case .success(let owed): obligations = owed
                    case .failure(let refusal): return .answer(.failure(refusal))
                    }
                    ticket = try await Self.claim(ticket.id, claimID, client: client)
                    if ticket.claimed { return .run(params, obligations, Claim(ticket: ticket, id: claimID)) }
                case .executed:
                    return .answer(Self.stored(ticket))
                case .rejected, .expired:
                    return .answer(.success(Self.toolError(ticket, tool: tool, approvers: approval.approvers)))
                case .pending, .running:
                    let now = ContinuousClock.now
                    guard now < deadline else { return .answer(.success(Self.toolError(ticket, tool: tool, approvers: approval.approvers))) }
                    if now >= nextKeepAlive {
                        channel.keepAlive(progress(request, ticket: ticket, approvers: approval.approvers, waited: now - started))
                        nextKeepAlive = now + keepAlive
                    }
                    // Nothing announced and not time to look again: wait for either, or a keep-alive.
                    if waiters.generation(ticket.id) == seen, now < nextRecheck {
                        await waiters.wait(ticket.id, after: seen, timeout: min(nextRecheck, nextKeepAlive, deadline) - now)
                        if Task.isCancelled { return .answer(.failure(.requestCancelled)) }
                        continue
                    }
                    seen = waiters.generation(ticket.id)
                    nextRecheck = ContinuousClock.now + recheck
                    ticket = try await client.call(ApprovalEndpoints.ticket, ApprovalReference(id: ticket.id))
                }
            }
        } catch {
            return .answer(
                .failure(
                    JSONRPCError(
                        code: JSONRPCError.Code.approvalsUnavailable,
                        message: "Approvals are unavailable (\(error.message)): \(tool) needs approval and was not run; try again shortly")))
        }
    }

    /// Claims, asking once more with the same claim id when the answer is lost (a claim granted
    /// and unheard would leave the call to nobody).
    static func claim(_ id: String, _ claimID: String, client: ServiceClient) async throws(ServiceError) -> ApprovalTicket {
        do {
            return try await client.call(ApprovalEndpoints.claim, ApprovalClaim(id: id, claim: claimID))
        } catch  where error.code == .timeout || error.code == .unavailable {
            return try await client.call(ApprovalEndpoints.claim, ApprovalClaim(id: id, claim: claimID), timeout: .seconds(10))
        }
    }

    /// Stores what the approved call returned (so retries get it, not a second run), and tells the
    /// agent who approved it and what was changed. Storing goes on even if the client has gone
    /// (a cancelled request): otherwise the request would stay claimed until its lease ends.
    func finish(_ claim: Claim, _ outcome: Result<JSONValue, JSONRPCError>) async -> Result<JSONValue, JSONRPCError> {
        let (text, isError): (String, Bool) =
            switch outcome {
            case .success(let result): (result.jsonText, false)
            case .failure(let error): (error.json.jsonText, true)
            }
        let stored =
            text.utf8.count <= ApprovalStage.maximumStoredBytes
            ? text
            : JSONRPCError(
                code: JSONRPCError.Code.resultTooLarge,
                message: "The approved call ran once; its result (\(text.utf8.count) bytes) was returned to the first caller and is too large to keep"
            ).json.jsonText
        let finish = ApprovalFinish(id: claim.ticket.id, claim: claim.id, outcome: stored, outcomeIsError: isError || stored != text)
        if let client {
            // Not cancelled with the request: awaited, in a task of its own, still the request's
            // (its id and trace: a detached task inherits no task-local values).
            let context = ServiceContext.current ?? .topLevel
            let span = WardenTrace.currentSpan
            await Task.detached {
                await ServiceContext.withValue(context) {
                    await WardenTrace.$currentSpan.withValue(span) {
                        for attempt in 0..<5 {
                            do throws(ServiceError) {
                                _ = try await client.call(ApprovalEndpoints.finish, finish)
                                return
                            } catch {
                                try? await Task.sleep(for: .milliseconds(250 << attempt))
                            }
                        }
                    }
                }
            }.value
        }
        return outcome.map { Self.annotate($0, ticket: claim.ticket) }
    }

    static let maximumStoredBytes = 1 << 20

    /// The same call (org, agent, acting user, tool and arguments, keys in any order) gives the same key.
    static func callKey(org: String, agent: String, user: String, tool: String, arguments: JSONValue) -> String {
        var bytes = Array("\(org)\u{0}\(agent)\u{0}\(user)\u{0}\(tool)\u{0}".utf8)
        bytes += arguments.canonical.serialized()
        return SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// The forwarded parameters, with an approver's arguments in place of the agent's. Approvers
    /// see redacted values as "[redacted]": left so, the agent's value stays (they cannot see it,
    /// so they cannot have meant to change it).
    static func parameters(_ params: JSONValue, modified: String?, original: JSONValue, redact: [JSONPath]) -> JSONValue {
        guard let modified, var arguments = try? JSONParser().parse(modified), case .object = arguments else { return params }
        for path in redact where path.value(in: arguments) == .string("[redacted]") {
            if let value = path.value(in: original) { arguments = path.replacing(in: arguments, with: value) }
        }
        return params.setting("arguments", to: arguments)
    }

    /// The outcome stored by the gateway that ran the call.
    static func stored(_ ticket: ApprovalTicket) -> Result<JSONValue, JSONRPCError> {
        guard let text = ticket.outcome, let value = try? JSONParser().parse(text) else {
            return .failure(JSONRPCError(code: JSONRPCError.Code.internalError, message: "The approved call ran, but its outcome was not kept"))
        }
        if ticket.outcomeIsError == true {
            var code = JSONRPCError.Code.internalError
            if case .number(let literal)? = value["code"], let number = Int(literal) { code = number }
            return .failure(JSONRPCError(code: code, message: value["message"]?.stringValue ?? "The approved call failed", data: value["data"]))
        }
        return .success(annotate(value, ticket: ticket))
    }

    /// The result as the agent gets it: `_meta` names the approval; modified arguments are said in
    /// the content too (the model reads that, not `_meta`).
    static func annotate(_ result: JSONValue, ticket: ApprovalTicket) -> JSONValue {
        var note: [(key: String, value: JSONValue)] = [
            ("id", .string(ticket.id)), ("approvedBy", .array(ticket.decidedBy.map(JSONValue.string))),
        ]
        var annotated = result
        if let modified = ticket.modifiedArguments {
            note.append(("modifiedArguments", (try? JSONParser().parse(modified)) ?? .string(modified)))
            if case .array(var content)? = result["content"] {
                content.append(
                    .object([
                        ("type", "text"),
                        (
                            "text",
                            .string("Note from Warden: an approver changed this call's arguments before it ran; it ran with \(modified)")
                        ),
                    ]))
                annotated = annotated.setting("content", to: .array(content))
            }
        }
        let meta = annotated["_meta"] ?? .object([])
        return annotated.setting("_meta", to: meta.setting("warden/approval", to: .object(note)))
    }

    /// A tool error the model can act on: rejected (with the reason), expired, or still pending.
    static func toolError(_ ticket: ApprovalTicket, tool: String, approvers: String) -> JSONValue {
        let text: String =
            switch ticket.state {
            case .rejected: "The call to \(tool) was not run: \(ticket.reason ?? "rejected by an approver") (approval \(ticket.id))."
            case .expired:
                "The call to \(tool) was not run: its approval request \(ticket.id) expired (\(ticket.reason ?? "nobody approved it in time"))."
            case .running:
                "The call to \(tool) (approval \(ticket.id)) is being run by another request; call again with the same arguments for its result."
            default:
                "The call to \(tool) is waiting for approval (\(approvers)): request \(ticket.id). It was not run yet; call again with the same "
                    + "arguments to get its result once it is approved."
            }
        return .object([
            ("content", .array([.object([("type", "text"), ("text", .string(text))])])),
            ("isError", .bool(true)),
            ("_meta", .object([("warden/approval", .object([("id", .string(ticket.id)), ("state", .string(ticket.state.rawValue))]))])),
        ])
    }

    /// Progress for a client that asked for it (its progress token), nil otherwise.
    func progress(_ request: ClientRequest, ticket: ApprovalTicket, approvers: String, waited: Duration) -> JSONRPCMessage? {
        guard let token = request.params?["_meta"]?["progressToken"] else { return nil }
        // Progress must grow with each notification: the seconds waited (and a little more each time).
        let seconds = Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18
        return .notification(
            method: "notifications/progress",
            params: .object([
                ("progressToken", token), ("progress", .number(String(format: "%.3f", seconds + 0.001))),
                ("message", .string("Waiting for approval (\(approvers)): request \(ticket.id)")),
            ]))
    }
}
