import Foundation
import Logging
import Testing
import WardenContracts

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

    @Test func aBatchRetriedWithNewEventsIsANewMessageForJetStream() {
        let events = Self.events(3)
        let logger = Logger(label: "test")
        let failed = CallAuditor.batches(of: Array(events.prefix(2)), logger: logger)[0]
        let again = CallAuditor.batches(of: Array(events.prefix(2)), logger: logger)[0]
        let grown = CallAuditor.batches(of: events, logger: logger)[0]
        #expect(failed.messageID == again.messageID, "the same events: de-duplicated by JetStream")
        #expect(failed.messageID != grown.messageID, "a JetStream duplicate window must not drop the new event")
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
        #expect(auditor.admit(org: "strict") == .refused, "full: refused by default")
        #expect(auditor.admit(org: nil) == .refused, "no org: refused")
        #expect(auditor.admit(org: "lenient") == .unrecorded, "full: an org that chose to continue runs unrecorded")
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
        #expect(!auditor.admit(), "admin changes are never let through unrecorded")
    }
}

/// When a webhook sink is tried again, and what an org admin may set (no I/O).
@Suite struct AuditSinkScheduleTests {
    typealias Schedule = AuditSinkSchedule

    @Test func deliveredRecordsMoveTheCursorAndAFullPageIsFollowedAtOnce() {
        let cursor = Schedule.Cursor(deliveredThrough: 10, attempts: 3)
        let full = Schedule.next(after: .delivered(through: 110, more: true), from: cursor)
        #expect(full == .init(cursor: .init(deliveredThrough: 110, attempts: 0), delay: .zero, lastError: nil, delivered: true))
        let last = Schedule.next(after: .delivered(through: 20, more: false), from: cursor)
        #expect(last.cursor.deliveredThrough == 20 && last.delay == Schedule.idle)
        #expect(Schedule.next(after: .delivered(through: 5, more: false), from: cursor).cursor.deliveredThrough == 10, "never backwards")
    }

    @Test func failuresBackOffExponentiallyUpToFiveMinutesAndNeverGiveUp() {
        var cursor = Schedule.Cursor(deliveredThrough: 7, attempts: 0)
        var delays: [Int64] = []
        for _ in 0..<12 {
            let update = Schedule.next(after: .failed("HTTP 500"), from: cursor)
            #expect(update.cursor.deliveredThrough == 7 && update.lastError == "HTTP 500" && !update.delivered)
            delays.append(update.delay.components.seconds)
            cursor = update.cursor
        }
        #expect(delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300])
        #expect(cursor.attempts == 12)
        let recovered = Schedule.next(after: .nothingNew, from: cursor)
        #expect(recovered.cursor.attempts == 0 && recovered.lastError == nil && recovered.delay == Schedule.idle)
    }

    @Test func sinksAnOrgAdminMaySet() {
        func sink(_ id: String = "siem", url: String = "https://collector.example/warden", secret: String = "0123456789abcdef") -> AuditSink {
            AuditSink(id: id, url: url, secret: secret)
        }
        #expect(AuditSettingsRoutes.problem(AuditSinks(sinks: [sink()]), allowLocal: false) == nil)
        #expect(AuditSettingsRoutes.problem(AuditSinks(sinks: [sink(url: "http://collector.example")]), allowLocal: false)?.contains("https") == true)
        for inside in ["https://127.0.0.1/x", "https://10.1.2.3/", "https://169.254.169.254/latest", "https://[::1]/", "https://localhost/"] {
            #expect(AuditSettingsRoutes.problem(AuditSinks(sinks: [sink(url: inside)]), allowLocal: false) != nil, "\(inside)")
        }
        #expect(AuditSettingsRoutes.problem(AuditSinks(sinks: [sink(url: "http://127.0.0.1:9/x")]), allowLocal: true) == nil)
        #expect(AuditSettingsRoutes.problem(AuditSinks(sinks: [sink(secret: "short")]), allowLocal: false)?.contains("16") == true)
        #expect(AuditSettingsRoutes.problem(AuditSinks(sinks: [sink(), sink()]), allowLocal: false)?.contains("different") == true)
        #expect(AuditSettingsRoutes.problem(AuditSinks(sinks: [sink("a b")]), allowLocal: false)?.contains("id") == true)
        #expect(AuditSettingsRoutes.problem(AuditSinks(sinks: (0..<9).map { sink("s\($0)") }), allowLocal: false)?.contains("at most 8") == true)
        let masked = AuditSinks(sinks: [sink(url: "https://collector.example/token/abc")]).masked.sinks[0]
        #expect(masked.url == "https://collector.example/…" && masked.secret == "set")
    }
}
