import Foundation
import WardenContracts

/// One request for approval and the rules of its life, without I/O: the store loads a record
/// (locked), applies one event, and writes back what changed. Each event returns what happened, or
/// the reason it cannot (said to the approver or gateway as is).
///
/// pending ─votes reach the quorum─▶ approved ─claim─▶ running ─finish─▶ executed
///    │ any reject ─▶ rejected            (a claim is granted once: no call runs twice;
///    └ its time passes ─▶ expired         a claim held past its lease ends as executed, outcome
///                                         unknown, and is never run again)
/// An approved request not run within its approval window expires too.
struct ApprovalRecord: Codable, Sendable, Equatable {
    struct Remember: Codable, Sendable, Equatable {
        var seconds: Int
        /// Any arguments for the same agent and tool, not only the same call.
        var anyArguments: Bool
    }

    var id: String
    var org: String
    var callKey: String
    var agent: String
    var user: String
    var client: String?
    var server: String
    var tool: String
    var arguments: String
    var modifiedArguments: String?
    var rule: String
    var approverRoles: [String]
    var approverUsers: [String]
    var needed: Int
    var allowSelf: Bool
    var state: ApprovalState = .pending
    var votes: [ApprovalRequest.Vote] = []
    var reason: String?
    var createdAt: Date
    var expiresAt: Date
    var decidedAt: Date?
    var remember: Remember?
    var claimedAt: Date?
    /// The gateway's id for its claim: the same claim asked again (a lost reply) is granted again.
    var claim: String?
    /// Who asked to remember the approval.
    var rememberedBy: String?
    var executedAt: Date?
    var outcome: String?
    var outcomeIsError: Bool?
    /// Changes of the arguments to approve (nil: none).
    var revision: Int?

    /// How long an ended request (run, rejected, expired) answers retries of the same call.
    static let replayWindow: TimeInterval = 600
    /// How long a gateway may hold a claim before the outcome counts as unknown: longer than the
    /// longest call a server may be allowed (an hour) and its instance's start.
    static let claimLease: TimeInterval = 7200

    /// By when an approved call must be run: as long after the approval as the request could wait.
    var runDeadline: Date? { decidedAt.map { $0.addingTimeInterval(expiresAt.timeIntervalSince(createdAt)) } }

    /// When something is next due for this request without anyone acting: its expiry, the end of
    /// its approval or claim, or the moment its stored outcome is dropped (nil: nothing).
    var settlesAt: Date? {
        switch state {
        case .pending: expiresAt
        case .approved: runDeadline
        case .running: claimedAt?.addingTimeInterval(Self.claimLease)
        case .executed: outcome == nil ? nil : executedAt?.addingTimeInterval(Self.replayWindow)
        case .rejected, .expired: nil
        }
    }

    /// The requirement a remembered approval stands for: it lets through only calls that policy
    /// sends to the same rule with the same approvers.
    var requirement: String { Self.requirement(rule: rule, roles: approverRoles, users: approverUsers, needed: needed) }

    static func requirement(rule: String, roles: [String], users: [String], needed: Int) -> String {
        "\(rule)|\(roles.sorted().joined(separator: ","))|\(users.sorted().joined(separator: ","))|\(needed)"
    }

    /// Why an event does not apply.
    enum Refusal: Error, Equatable {
        case notAnApprover
        case ownAgent
        case alreadyVoted
        case decided(ApprovalState)
        case badArguments(String)
        case rememberModified
        case rememberQuorum
        case rememberTooLong
        /// The arguments changed since the approver looked (`revision`).
        case changedSince(Int)

        var serviceError: ServiceError {
            switch self {
            case .notAnApprover: ServiceError(.forbidden, "you are not among this request's approvers")
            case .ownAgent: ServiceError(.forbidden, "this call is made by your own agent: someone else must approve it")
            case .alreadyVoted: ServiceError(.conflict, "you have already approved this request; it needs another approver")
            case .decided(let state): ServiceError(.conflict, "this request is already \(state.rawValue)")
            case .badArguments(let why): ServiceError(.badRequest, "modified arguments: \(why)")
            case .rememberModified: ServiceError(.badRequest, "an approval with modified arguments cannot be remembered")
            case .rememberQuorum: ServiceError(.badRequest, "a call that needs several approvers is approved one at a time: it cannot be remembered")
            case .rememberTooLong: ServiceError(.badRequest, "remember for 1 second to \(ApprovalDecision.maximumRememberSeconds / 86400) days")
            case .changedSince(let revision):
                ServiceError(.conflict, "an approver changed the arguments since you looked (now revision \(revision)): look again before deciding")
            }
        }
    }

    /// What a decision did, for the record of changes and the announcement.
    enum Outcome: String, Sendable, Equatable {
        /// An approval that does not complete the quorum yet.
        case voted
        /// An approval with other arguments that does not complete the quorum: the others approve these.
        case modified
        case approved
        case rejected
    }

    /// Whether `approver` may decide this request (their org is checked by the store). The user an
    /// agent acts for may reject its call, and approve it only when the policy says so.
    func mayDecide(_ approver: Approver, _ verdict: ApprovalDecision.Verdict) -> Refusal? {
        guard approverUsers.contains(approver.user) || approverRoles.contains(approver.role) else { return .notAnApprover }
        if approver.user == user, !allowSelf, verdict == .approve { return .ownAgent }
        return nil
    }

    /// Whether approvers see it: they could decide it, or have.
    func isVisible(to approver: Approver) -> Bool {
        approverUsers.contains(approver.user) || approverRoles.contains(approver.role) || votes.contains { $0.user == approver.user }
    }

    /// A pending request whose time has passed expires (the same as a rejection); so does an
    /// approved one nobody ran in time; a claim held past its lease ends with an unknown outcome.
    mutating func expireIfDue(now: Date) -> Bool {
        switch state {
        case .pending where now >= expiresAt:
            state = .expired
            reason = "nobody approved it in time"
            decidedAt = now
        case .approved where now >= runDeadline ?? .distantFuture:
            state = .expired
            reason = "it was approved, but the agent did not make the call again in time"
            decidedAt = now
        case .running where now >= (claimedAt ?? now).addingTimeInterval(Self.claimLease):
            state = .executed
            executedAt = now
            outcome = Self.unknownOutcome
            outcomeIsError = true
        default:
            return false
        }
        return true
    }

    /// The change `expireIfDue` made, as announced: a claim past its lease was abandoned; the rest expired.
    var expiryEvent: String { state == .executed ? "abandoned" : "expired" }

    /// What retries hear of a call whose gateway stopped before saying how it went.
    static let unknownOutcome =
        #"{"code":-32603,"message":"The approved call's outcome is unknown: the gateway running it stopped before reporting it. It was not run again."}"#

    /// An approver's decision. Approving with other arguments replaces the proposal and restarts the
    /// count with this approval (the others approved something else); the same person counts once;
    /// any rejection rejects.
    mutating func decide(_ decision: ApprovalDecision, now: Date) -> Result<Outcome, Refusal> {
        if expireIfDue(now: now) { return .failure(.decided(.expired)) }
        guard state == .pending else { return .failure(.decided(state)) }
        if let refusal = mayDecide(decision.approver, decision.verdict) { return .failure(refusal) }
        if let seen = decision.revision, seen != revision ?? 0 { return .failure(.changedSince(revision ?? 0)) }
        let vote = ApprovalRequest.Vote(user: decision.approver.user, verdict: decision.verdict, at: now)
        switch decision.verdict {
        case .reject:
            votes.append(vote)
            state = .rejected
            decidedAt = now
            let why = decision.reason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            reason = "rejected by \(decision.approver.user)" + (why.isEmpty ? "" : ": \(why.prefix(1000))")
            return .success(.rejected)
        case .approve:
            // A remembered approval lets later calls through unasked: only for the call as the
            // agent made it, and only where one person's approval is enough.
            if let seconds = decision.rememberSeconds {
                guard decision.arguments == nil, modifiedArguments == nil else { return .failure(.rememberModified) }
                guard needed == 1 else { return .failure(.rememberQuorum) }
                guard seconds >= 1, seconds <= ApprovalDecision.maximumRememberSeconds else { return .failure(.rememberTooLong) }
            }
            if let arguments = decision.arguments {
                if let problem = Self.problem(arguments) { return .failure(.badArguments(problem)) }
                modifiedArguments = arguments
                revision = (revision ?? 0) + 1
                votes.removeAll { $0.verdict == .approve }
            } else if votes.contains(where: { $0.user == decision.approver.user }) {
                return .failure(.alreadyVoted)
            }
            votes.append(vote)
            if let seconds = decision.rememberSeconds {
                remember = Remember(seconds: seconds, anyArguments: decision.rememberAnyArguments ?? false)
                rememberedBy = decision.approver.user
            }
            guard votes.filter({ $0.verdict == .approve }).count >= needed else { return .success(decision.arguments == nil ? .voted : .modified) }
            state = .approved
            decidedAt = now
            return .success(.approved)
        }
    }

    /// The right to run the approved call: granted to the first gateway that asks (and to it again
    /// when it asks with the same claim id, its first answer lost).
    mutating func claim(_ id: String, now: Date) -> Bool {
        if state == .running, claim == id { return true }
        guard state == .approved else { return false }
        state = .running
        claimedAt = now
        claim = id
        return true
    }

    /// What the call returned; stored once, by the claim's holder.
    mutating func finish(_ id: String, outcome: String, isError: Bool, now: Date) -> Bool {
        guard state == .running, claim == id else { return false }
        state = .executed
        executedAt = now
        self.outcome = outcome
        outcomeIsError = isError
        return true
    }

    /// The stored outcome is dropped once no retry can be answered with it: results are not kept.
    mutating func purgeOutcome(now: Date) -> Bool {
        guard state == .executed, outcome != nil, !answersRetries(now: now) else { return false }
        outcome = nil
        return true
    }

    /// Whether a retry of the same call gets this request's ending instead of a new request: for
    /// `replayWindow` after it ended (rejected, expired, or run), so an agent retrying hears the
    /// outcome rather than asking again at once; later, the same call opens a new request.
    func answersRetries(now: Date) -> Bool {
        switch state {
        case .pending, .approved, .running: true
        case .rejected, .expired: now < (decidedAt ?? now).addingTimeInterval(Self.replayWindow)
        case .executed: now < (executedAt ?? now).addingTimeInterval(Self.replayWindow)
        }
    }

    /// Modified arguments are a JSON object of at most 64 KiB.
    static func problem(_ arguments: String) -> String? {
        guard arguments.utf8.count <= 64 << 10 else { return "at most 64 KiB" }
        guard let object = try? JSONSerialization.jsonObject(with: Data(arguments.utf8)), object is [String: Any] else {
            return "a JSON object, like {\"to\": \"a@example.com\"}"
        }
        return nil
    }

    var ticket: ApprovalTicket {
        ApprovalTicket(
            id: id, state: state, modifiedArguments: modifiedArguments, reason: reason, decidedBy: votes.map(\.user), expiresAt: expiresAt,
            outcome: outcome, outcomeIsError: outcomeIsError)
    }

    var request: ApprovalRequest {
        ApprovalRequest(
            id: id, org: org, state: state, agent: agent, user: user, client: client, server: server, tool: tool, arguments: arguments,
            modifiedArguments: modifiedArguments, rule: rule, approverRoles: approverRoles, approverUsers: approverUsers, needed: needed,
            votes: votes,
            reason: reason, createdAt: createdAt, expiresAt: expiresAt, decidedAt: decidedAt, rememberSeconds: remember?.seconds,
            revision: revision ?? 0)
    }
}
