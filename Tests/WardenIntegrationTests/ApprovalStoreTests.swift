import Foundation
import PostgresNIO
import Testing
import WardenContracts
import WardenServiceKit

@testable import WardenApprovals

/// The approvals store against PostgreSQL, with the clock as a parameter: who joins which request,
/// what a remembered approval lets through, what falls due, and the notices outbox.
@Suite(.serialized) struct ApprovalStoreTests {
    let start = Date(timeIntervalSince1970: 1_900_000_000)
    let approver = Approver(org: "acme", user: "usr_ann", role: "approver")

    func opening(_ key: String, user: String = "usr_bob", needed: Int = 1, roles: [String] = ["approver"]) -> ApprovalOpening {
        ApprovalOpening(
            org: "acme", agent: "agt_1", user: user, client: nil, server: "mail", tool: "mail__send", arguments: #"{"k":"\#(key)"}"#,
            callKey: key + user, rule: "mail", approverRoles: roles, approverUsers: [], needed: needed, expiresSeconds: 600, allowSelf: false)
    }

    func withStore(_ body: @escaping @Sendable (ApprovalStore, DatabasePool) async throws -> Void) async throws {
        let database = try await TestDatabase.create()
        try await withDatabaseClient(database, as: .approvals) { client in
            _ = try await MigrationRunner(schema: "approvals", migrations: ApprovalsService.migrations).run(
                on: client, logger: TestEnvironment.logger)
            try await body(ApprovalStore(database: client, logger: TestEnvironment.logger), client)
        }
    }

    @Test func aRetryJoinsItsRequestUnlessPolicyNowAsksForOtherApprovers() async throws {
        try await withStore { store, _ in
            let (first, opened) = try await store.open(opening("a"), now: start)
            #expect(first.state == .pending && opened.map(\.event) == ["opened"])
            let (joined, none) = try await store.open(opening("a"), now: start.addingTimeInterval(5))
            #expect(joined.id == first.id && none.isEmpty, "the same call joins")
            let (other, _) = try await store.open(opening("a", user: "usr_carol"), now: start.addingTimeInterval(5))
            #expect(other.id != first.id, "another user's identical call is another call")
            // The policy now wants two approvers: the old request gives way.
            let (stricter, changes) = try await store.open(opening("a", needed: 2), now: start.addingTimeInterval(10))
            #expect(stricter.id != first.id && stricter.state == .pending)
            #expect(changes.map(\.event) == ["superseded", "opened"], "\(changes.map(\.event))")
        }
    }

    @Test func aRememberedApprovalIsForTheSameUserAndRuleAndARetryNeverRunsTwice() async throws {
        try await withStore { store, _ in
            let (first, _) = try await store.open(opening("r"), now: start)
            _ = try await store.decide(
                ApprovalDecision(approver: approver, id: first.id, verdict: .approve, rememberSeconds: 3600, rememberAnyArguments: true), now: start)
            var claimed = try await store.claim(ApprovalClaim(id: first.id, claim: "c1"), actor: "gateway:test", now: start).0
            #expect(claimed.claimed)
            _ = try await store.finish(
                ApprovalFinish(id: first.id, claim: "c1", outcome: "{}", outcomeIsError: false), actor: "gateway:test", now: start)
            // A retry of the call that just ran hears its outcome, remembered or not.
            let (retry, _) = try await store.open(opening("r"), now: start.addingTimeInterval(1))
            #expect(retry.id == first.id && retry.state == .executed)
            // Another call of the tool by the same agent for the same user: approved, a request of its own.
            let (next, changes) = try await store.open(opening("s"), now: start.addingTimeInterval(2))
            #expect(next.state == .approved && next.remembered && next.id != first.id && changes.map(\.event) == ["approved"])
            claimed = try await store.claim(ApprovalClaim(id: next.id, claim: "c2"), actor: "gateway:test", now: start.addingTimeInterval(2)).0
            #expect(claimed.claimed)
            // Not for another user the agent acts for, nor once policy asks for more approvers.
            #expect(try await store.open(opening("t", user: "usr_carol"), now: start.addingTimeInterval(3)).0.state == .pending)
            #expect(try await store.open(opening("u", needed: 2), now: start.addingTimeInterval(3)).0.state == .pending)
            // Nor after its hour.
            #expect(try await store.open(opening("v"), now: start.addingTimeInterval(3601)).0.state == .pending)
        }
    }

    @Test func whatIsDueIsDoneByTheExpiryLoop() async throws {
        try await withStore { store, client in
            let (pending, _) = try await store.open(opening("p"), now: start)
            let (unused, _) = try await store.open(opening("q"), now: start)
            let (stuck, _) = try await store.open(opening("w"), now: start)
            for id in [unused.id, stuck.id] {
                _ = try await store.decide(ApprovalDecision(approver: approver, id: id, verdict: .approve), now: start)
            }
            _ = try await store.claim(ApprovalClaim(id: stuck.id, claim: "c"), actor: "gateway:test", now: start)
            #expect(try await store.settle(now: start.addingTimeInterval(599)).isEmpty, "nothing is due yet")
            let due = try await store.settle(now: start.addingTimeInterval(600))
            #expect(Set(due.map(\.request.id)) == [pending.id, unused.id], "the pending request and the unused approval expire")
            let expiredPending = try await store.ticket(pending.id).state
            let expiredUnused = try await store.ticket(unused.id).state
            #expect(expiredPending == .expired && expiredUnused == .expired)
            let abandoned = try await store.settle(now: start.addingTimeInterval(ApprovalRecord.claimLease))
            #expect(abandoned.map(\.event) == ["abandoned"] && abandoned.first?.request.id == stuck.id)
            let ticket = try await store.ticket(stuck.id)
            #expect(ticket.state == .executed && ticket.outcome?.contains("outcome is unknown") == true)
            // The stored outcome is dropped once no retry can use it.
            _ = try await store.settle(now: start.addingTimeInterval(ApprovalRecord.claimLease + ApprovalRecord.replayWindow))
            #expect(try await store.ticket(stuck.id).outcome == nil)
            // Every change went to the outbox for Slack and webhooks, in order, and is relayed once.
            var relayed: [String] = []
            let count = try await store.relayNotices { _, payload in
                relayed.append(try EnvelopeCoding.decoder().decode(ApprovalChange.self, from: payload).event)
            }
            #expect(count == relayed.count && relayed.filter { $0 == "opened" }.count == 3 && relayed.contains("expired"), "\(relayed)")
            #expect(try await store.relayNotices { _, _ in } == 0)
            _ = client
        }
    }

    @Test func aNoticeWaitsWhileTheStreamDoesNotTakeIt() async throws {
        try await withStore { store, _ in
            _ = try await store.open(opening("n"), now: start)
            struct Refused: Error {}
            #expect(try await store.relayNotices { _, _ in throw Refused() } == 0)
            #expect(try await store.relayNotices { _, _ in } == 1, "kept, and relayed once the stream takes it")
        }
    }
}
