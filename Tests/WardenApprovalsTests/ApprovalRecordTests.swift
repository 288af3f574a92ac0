import Foundation
import Testing
import WardenContracts

@testable import WardenApprovals

/// The life of one request, without I/O: quorum, rejection, self-approval, modified arguments,
/// remembering, expiry, and a claim granted once.
@Suite struct ApprovalRecordTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func record(needed: Int = 1, allowSelf: Bool = false) -> ApprovalRecord {
        ApprovalRecord(
            id: "apr_1", org: "acme", callKey: "k", agent: "agt_1", user: "usr_owner", server: "mail", tool: "mail__send",
            arguments: #"{"to":"all"}"#, rule: "mail-needs-approval", approverRoles: ["approver"], approverUsers: ["usr_named"], needed: needed,
            allowSelf: allowSelf, createdAt: start, expiresAt: start.addingTimeInterval(600))
    }

    func approver(_ user: String, role: String = "approver", org: String = "acme") -> Approver { Approver(org: org, user: user, role: role) }

    func approve(_ user: String, role: String = "approver", arguments: String? = nil, remember: Int? = nil) -> ApprovalDecision {
        ApprovalDecision(approver: approver(user, role: role), id: "apr_1", verdict: .approve, arguments: arguments, rememberSeconds: remember)
    }

    @Test func oneApprovalOfTheRightRoleApproves() {
        var request = record()
        #expect(request.decide(approve("usr_a"), now: start) == .success(.approved))
        #expect(request.state == .approved && request.decidedAt == start)
        #expect(request.decide(approve("usr_b"), now: start) == .failure(.decided(.approved)))
    }

    @Test func onlyTheNamedRolesAndUsersDecide() {
        var request = record()
        #expect(request.decide(approve("usr_m", role: "member"), now: start) == .failure(.notAnApprover))
        #expect(request.decide(approve("usr_x", role: "admin"), now: start) == .failure(.notAnApprover), "admins only when the rule names them")
        #expect(request.decide(approve("usr_named", role: "member"), now: start) == .success(.approved), "a named user, whatever their role")
    }

    @Test func theActingUserCannotApproveTheirOwnAgentUnlessThePolicySays() {
        var request = record()
        #expect(request.decide(approve("usr_owner"), now: start) == .failure(.ownAgent))
        var allowed = record(allowSelf: true)
        #expect(allowed.decide(approve("usr_owner"), now: start) == .success(.approved))
        // Stopping one's own agent is always allowed.
        var stopped = record()
        let reject = ApprovalDecision(approver: approver("usr_owner"), id: "apr_1", verdict: .reject, reason: "no")
        #expect(stopped.decide(reject, now: start) == .success(.rejected))
    }

    @Test func aQuorumCountsEachPersonOnce() {
        var request = record(needed: 2)
        #expect(request.decide(approve("usr_a"), now: start) == .success(.voted))
        #expect(request.decide(approve("usr_a"), now: start) == .failure(.alreadyVoted))
        #expect(request.state == .pending)
        #expect(request.decide(approve("usr_b"), now: start) == .success(.approved))
        #expect(request.votes.map(\.user) == ["usr_a", "usr_b"])
    }

    @Test func oneRejectionRejectsWithItsReason() {
        var request = record(needed: 2)
        _ = request.decide(approve("usr_a"), now: start)
        let reject = ApprovalDecision(approver: approver("usr_b"), id: "apr_1", verdict: .reject, reason: "  not to everyone ")
        #expect(request.decide(reject, now: start) == .success(.rejected))
        #expect(request.state == .rejected && request.reason == "rejected by usr_b: not to everyone")
    }

    @Test func modifiedArgumentsReplaceTheProposalAndRestartTheCount() {
        var request = record(needed: 2)
        _ = request.decide(approve("usr_a"), now: start)
        #expect(
            request.decide(approve("usr_b", arguments: "[1]"), now: start)
                == .failure(.badArguments("a JSON object, like {\"to\": \"a@example.com\"}")))
        #expect(request.decide(approve("usr_b", arguments: #"{"to":"ten"}"#), now: start) == .success(.modified))
        #expect(request.modifiedArguments == #"{"to":"ten"}"# && request.request.revision == 1)
        #expect(request.votes.map(\.user) == ["usr_b"], "usr_a approved other arguments")
        // An approver who looked before the change is told to look again.
        var stale = approve("usr_a")
        stale.revision = 0
        #expect(request.decide(stale, now: start) == .failure(.changedSince(1)))
        #expect(request.decide(approve("usr_a"), now: start) == .success(.approved))
        #expect(request.ticket.modifiedArguments == #"{"to":"ten"}"#)
    }

    @Test func rememberingIsBoundedAndNotForModifiedCallsOrQuorums() {
        var request = record()
        #expect(request.decide(approve("usr_a", arguments: "{}", remember: 60), now: start) == .failure(.rememberModified))
        #expect(request.decide(approve("usr_a", remember: 8 * 86400), now: start) == .failure(.rememberTooLong))
        #expect(request.decide(approve("usr_a", remember: 3600), now: start) == .success(.approved))
        #expect(request.remember == ApprovalRecord.Remember(seconds: 3600, anyArguments: false) && request.rememberedBy == "usr_a")
        // Arguments changed by one approver are never remembered by the next.
        var changed = record(needed: 2)
        #expect(changed.decide(approve("usr_a", arguments: #"{"to":"ten"}"#), now: start) == .success(.modified))
        #expect(changed.decide(approve("usr_b", remember: 60), now: start) == .failure(.rememberModified))
        // A quorum approves each call.
        var quorum = record(needed: 2)
        #expect(quorum.decide(approve("usr_a", remember: 60), now: start) == .failure(.rememberQuorum))
        #expect(ApprovalRecord.requirement(rule: "r", roles: ["b", "a"], users: [], needed: 1) == "r|a,b||1")
    }

    @Test func expiryIsARejectionAndEndsVoting() {
        var request = record()
        let step1 = request.expireIfDue(now: start.addingTimeInterval(599))
        #expect(!step1)
        #expect(request.decide(approve("usr_a"), now: start.addingTimeInterval(600)) == .failure(.decided(.expired)))
        #expect(request.state == .expired && request.reason == "nobody approved it in time")
        #expect(request.answersRetries(now: start.addingTimeInterval(601)), "a retry soon after hears it expired")
        #expect(!request.answersRetries(now: start.addingTimeInterval(600 + ApprovalRecord.replayWindow)), "later, it asks again")
    }

    @Test func anApprovedCallIsClaimedOnceAndItsOutcomeAnswersRetriesForAWhile() {
        var request = record()
        var step = request.claim("c1", now: start)
        #expect(!step, "nothing to run before approval")
        _ = request.decide(approve("usr_a"), now: start)
        step = request.claim("c1", now: start)
        #expect(step)
        step = request.claim("c2", now: start)
        #expect(!step, "another claim is refused: one run")
        step = request.claim("c1", now: start)
        #expect(step, "the same claim asked again (its answer lost) is granted again")
        #expect(request.answersRetries(now: start))
        step = request.finish("c2", outcome: "other", isError: false, now: start)
        #expect(!step, "only the claim's holder stores the outcome")
        step = request.finish("c1", outcome: #"{"content":[]}"#, isError: false, now: start)
        #expect(step)
        step = request.finish("c1", outcome: "other", isError: false, now: start)
        #expect(!step, "stored once")
        #expect(request.ticket.outcome == #"{"content":[]}"#)
        #expect(request.settlesAt == start.addingTimeInterval(ApprovalRecord.replayWindow))
        #expect(request.answersRetries(now: start.addingTimeInterval(ApprovalRecord.replayWindow - 1)))
        step = request.purgeOutcome(now: start.addingTimeInterval(ApprovalRecord.replayWindow - 1))
        #expect(!step)
        #expect(!request.answersRetries(now: start.addingTimeInterval(ApprovalRecord.replayWindow + 1)))
        step = request.purgeOutcome(now: start.addingTimeInterval(ApprovalRecord.replayWindow + 1))
        #expect(step && request.outcome == nil && request.settlesAt == nil, "results are not kept once no retry can use them")
    }

    @Test func aClaimHeldPastItsLeaseEndsWithAnUnknownOutcomeAndNeverRunsAgain() {
        var request = record()
        _ = request.decide(approve("usr_a"), now: start)
        _ = request.claim("c1", now: start)
        #expect(request.settlesAt == start.addingTimeInterval(ApprovalRecord.claimLease))
        var step = request.expireIfDue(now: start.addingTimeInterval(ApprovalRecord.claimLease - 1))
        #expect(!step)
        step = request.expireIfDue(now: start.addingTimeInterval(ApprovalRecord.claimLease))
        #expect(step && request.state == .executed && request.outcomeIsError == true)
        #expect(request.outcome?.contains("outcome is unknown") == true)
        step = request.claim("c2", now: start.addingTimeInterval(ApprovalRecord.claimLease))
        #expect(!step)
    }

    @Test func anApprovalNobodyUsesExpiresAfterAsLongAsTheRequestCouldWait() {
        var request = record()
        let approvedAt = start.addingTimeInterval(100)
        _ = request.decide(approve("usr_a"), now: approvedAt)
        #expect(request.runDeadline == approvedAt.addingTimeInterval(600) && request.settlesAt == request.runDeadline)
        var step = request.expireIfDue(now: approvedAt.addingTimeInterval(599))
        #expect(!step)
        step = request.expireIfDue(now: approvedAt.addingTimeInterval(600))
        #expect(step && request.state == .expired)
        step = request.claim("c1", now: approvedAt.addingTimeInterval(600))
        #expect(!step)
    }

    @Test func approversSeeWhatTheyMayDecideOrDecided() {
        var request = record()
        #expect(request.isVisible(to: approver("usr_a")))
        #expect(!request.isVisible(to: approver("usr_m", role: "member")))
        // Someone who voted sees it even once their role no longer names them.
        _ = request.decide(approve("usr_a"), now: start)
        #expect(request.isVisible(to: approver("usr_a", role: "member")))
    }
}
