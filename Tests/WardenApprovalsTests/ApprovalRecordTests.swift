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
        #expect(request.decide(approve("usr_b", arguments: #"{"to":"ten"}"#), now: start) == .success(.voted))
        #expect(request.modifiedArguments == #"{"to":"ten"}"#)
        #expect(request.votes.map(\.user) == ["usr_b"], "usr_a approved other arguments")
        #expect(request.decide(approve("usr_a"), now: start) == .success(.approved))
        #expect(request.ticket.modifiedArguments == #"{"to":"ten"}"#)
    }

    @Test func rememberingIsBoundedAndNotForModifiedCalls() {
        var request = record()
        #expect(request.decide(approve("usr_a", arguments: "{}", remember: 60), now: start) == .failure(.rememberModified))
        #expect(request.decide(approve("usr_a", remember: 8 * 86400), now: start) == .failure(.rememberTooLong))
        #expect(request.decide(approve("usr_a", remember: 3600), now: start) == .success(.approved))
        #expect(request.remember == ApprovalRecord.Remember(seconds: 3600, anyArguments: false))
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
        let step2 = request.claim(now: start)
        #expect(!step2, "nothing to run before approval")
        _ = request.decide(approve("usr_a"), now: start)
        let step3 = request.claim(now: start)
        #expect(step3)
        let step4 = request.claim(now: start)
        #expect(!step4, "the second claim is refused: one run")
        #expect(request.answersRetries(now: start))
        let step5 = request.finish(outcome: #"{"content":[]}"#, isError: false, now: start)
        #expect(step5)
        let step6 = request.finish(outcome: "other", isError: false, now: start)
        #expect(!step6, "stored once")
        #expect(request.ticket.outcome == #"{"content":[]}"#)
        #expect(request.answersRetries(now: start.addingTimeInterval(ApprovalRecord.replayWindow - 1)))
        #expect(!request.answersRetries(now: start.addingTimeInterval(ApprovalRecord.replayWindow + 1)))
    }

    @Test func approversSeeWhatTheyMayDecideOrDecided() {
        var request = record()
        #expect(request.isVisible(to: approver("usr_a")))
        #expect(!request.isVisible(to: approver("usr_m", role: "member")))
        _ = request.decide(approve("usr_named", role: "member"), now: start)
        #expect(request.isVisible(to: approver("usr_named", role: "member")))
    }
}
