import Foundation
import Logging
import Testing
import WardenContracts
import WardenMCP

@testable import WardenGateway

/// How the gateway batches audit events for JetStream (no I/O).
@Suite struct CallAuditorTests {
    static func events(_ count: Int) -> [AuditEvent] {
        (0..<count).map {
            AuditEvent(service: .gateway, action: "mcp.tools.call", outcome: .success, org: "acme", actor: "agent:a", target: "t\($0)", detail: "d")
        }
    }

    @Test func batchesAreBoundedAndCarryEveryEventOnceAsALine() throws {
        let events = Self.events(600)
        let batches = CallAuditor.batches(of: events, logger: Logger(label: "test"))
        #expect(batches.map(\.events.count) == [256, 256, 88])
        let lines = batches.flatMap { $0.payload.split(separator: 0x0A) }
        #expect(lines.count == 600)
        let decoded = try lines.map { try EnvelopeCoding.decoder().decode(AuditEvent.self, from: $0) }
        #expect(decoded.map(\.id) == events.map(\.id) && decoded.map(\.target) == events.map(\.target))
    }

    @Test func aCallsEventIDSortsWithTheCallsTime() {
        func event(at time: Date) -> AuditEvent {
            CallAuditor.event(
                CallAuditor.Call(
                    method: "tools/call", params: nil, agent: nil, clientAddress: nil, session: nil, server: "s", decision: "allow", redact: nil,
                    result: .success(.object([])), latency: .milliseconds(1), time: time))
        }
        let earlier = event(at: Date(timeIntervalSince1970: 1_796_083_200))
        let later = event(at: Date(timeIntervalSince1970: 1_796_083_200.002))
        let milliseconds = String(1_796_083_200_000, radix: 16)
        #expect(
            earlier.id.replacingOccurrences(of: "-", with: "").prefix(12) == String(repeating: "0", count: 12 - milliseconds.count) + milliseconds)
        #expect(earlier.id < later.id, "the audit store appends ids at its index's right edge")
    }

    @Test func aBatchRetriedWithNewEventsIsANewMessageForJetStream() {
        let events = Self.events(3)
        let logger = Logger(label: "test")
        let failed = CallAuditor.batches(of: Array(events.prefix(2)), logger: logger)[0]
        let again = CallAuditor.batches(of: Array(events.prefix(2)), logger: logger)[0]
        let grown = CallAuditor.batches(of: events, logger: logger)[0]
        #expect(failed.messageID == again.messageID, "the same events: de-duplicated by JetStream")
        #expect(failed.messageID != grown.messageID, "a JetStream duplicate window must not drop the new event")
        // The ids, a line each, hashed: what earlier versions sent for the same batch (a batch a
        // gateway of another version publishes again is still a duplicate).
        var pinned = Self.events(2)
        (pinned[0].id, pinned[1].id) = ("a", "b")
        #expect(
            CallAuditor.batches(of: pinned, logger: logger)[0].messageID == "911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2",
            "SHA-256 of \"a\\nb\\n\"")
    }

    @Test func requestsRunningAtOnceCannotTakeTheSpoolPastItsCapacity() {
        // No NATS: nothing is published, so what is admitted and recorded stays.
        let auditor = CallAuditor(bus: nil, capacity: 3, logger: Logger(label: "test"))
        let places = (0..<3).map { _ in auditor.admit() }
        #expect(places == [true, true, true], "three places")
        #expect(!auditor.admit(), "a fourth request running at once is refused before it runs")
        auditor.record(Self.events(1)[0])
        #expect(!auditor.admit(), "a recorded event still holds its place until published")
        #expect(!auditor.isAccepting)
    }

    @Test func aFullSpoolRefusesRequestsUnlessTheirOrgChoseToContinueAndCountsEachGap() throws {
        let auditor = CallAuditor(bus: nil, capacity: 1, continues: { $0 == "lenient" }, logger: Logger(label: "test"))
        #expect(auditor.admit(org: "strict") == .recorded, "room: recorded whatever the org chose")
        #expect(auditor.admit(org: "lenient") == .refused, "full of requests running while the stream works: refused alike")
        auditor.streamTakesEvents(false)
        #expect(auditor.admit(org: "strict") == .refused, "audit unavailable: refused by default")
        #expect(auditor.admit(org: nil) == .refused, "no org: refused")
        #expect(auditor.admit(org: "lenient") == .unrecorded, "audit unavailable: an org that chose to continue runs unrecorded")
        let first = Date(timeIntervalSince1970: 1_800_000_000)
        auditor.ranUnrecorded(org: "lenient", at: first)
        auditor.ranUnrecorded(org: "lenient", at: first.addingTimeInterval(5))
        auditor.ranUnrecorded(org: "lenient", at: first.addingTimeInterval(2))
        let gaps = auditor.takeGaps()
        let gap = try #require(gaps.first)
        #expect(gaps.count == 1 && gap.org == "lenient" && gap.action == "audit.unrecorded" && gap.outcome == .failure)
        #expect(gap.time == first)
        #expect(gap.detail.hasPrefix("3 requests ran unrecorded from 2027-01-15T08:00:00.000Z to 2027-01-15T08:00:05.000Z"), "\(gap.detail)")
        #expect(auditor.takeGaps().isEmpty, "a gap goes on the record once")
    }
}
