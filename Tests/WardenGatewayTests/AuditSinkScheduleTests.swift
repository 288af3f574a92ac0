import Foundation
import Testing
import WardenContracts

@testable import WardenGateway

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
            let update = Schedule.next(after: .failed(.endpoint(.status(500))), from: cursor)
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
