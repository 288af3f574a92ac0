import Testing
import WardenContracts

@testable import WardenGateway

/// The arithmetic of a limit's count, without the shared store: bursts, refills, quotas and when to retry.
@Suite struct LimitArithmeticTests {
    let fivePerMinute = CallLimit(id: "r", kind: .rate, count: 5, periodSeconds: 60, burst: 5, per: ["agent"])

    /// Takes calls at the given times (ms) and returns which were admitted.
    func run(_ limit: CallLimit, at times: [Int64]) -> [Bool] {
        var stored: Int64?
        return times.map { now in
            switch LimitArithmetic.step(limit, stored: stored, now: now) {
            case .admit(let value):
                stored = value
                return true
            case .refuse: return false
            }
        }
    }

    @Test func aBurstIsAdmittedThenTheRate() {
        let start: Int64 = 1_800_000_000_000_000
        #expect(run(fivePerMinute, at: Array(repeating: start, count: 6)) == [true, true, true, true, true, false])
        // One call refills every 12 s.
        #expect(
            run(fivePerMinute, at: Array(repeating: start, count: 5) + [start + 11_999_999, start + 12_000_000, start + 12_000_001]) == [
                true, true, true, true, true, false, true, false,
            ])
        // Idle time refills up to the burst, never past it.
        #expect(
            run(fivePerMinute, at: Array(repeating: start, count: 5) + Array(repeating: start + 3_600_000_000, count: 6)).suffix(6) == [
                true, true, true, true, true, false,
            ])
    }

    @Test func aRefusalSaysWhenToRetry() {
        let start: Int64 = 1_800_000_000_000_000
        var stored: Int64?
        for _ in 0..<5 {
            if case .admit(let value) = LimitArithmetic.step(fivePerMinute, stored: stored, now: start) { stored = value }
        }
        #expect(LimitArithmetic.step(fivePerMinute, stored: stored, now: start) == .refuse(retryAfterMicroseconds: 12_000_000))
        #expect(LimitArithmetic.step(fivePerMinute, stored: stored, now: start + 2_000_000) == .refuse(retryAfterMicroseconds: 10_000_000))
    }

    @Test func aBucketLeftByASlowerLimitCountsAsFull() {
        // 1/day left the next slot a day ahead; the admin changed the limit to 5/minute.
        let start: Int64 = 1_800_000_000_000_000
        #expect(LimitArithmetic.step(fivePerMinute, stored: start + 86_400_000_000, now: start) == .refuse(retryAfterMicroseconds: 12_000_000))
    }

    @Test func ratesAboveAThousandASecondAreNotRoundedDown() {
        let fast = CallLimit(id: "f", kind: .rate, count: 5_000, periodSeconds: 1, burst: 1, per: ["agent"])
        let start: Int64 = 1_800_000_000_000_000
        // One call every 200 µs.
        #expect(run(fast, at: [start, start + 100, start + 200, start + 399, start + 400]) == [true, false, true, false, true])
    }

    @Test func aQuotaCountsTheDayAndRetriesAtMidnightUTC() {
        let quota = CallLimit(id: "q", kind: .quota, count: 3, periodSeconds: 86_400, burst: 3, per: ["user"])
        let midnight: Int64 = 20_000 * 86_400_000_000
        let noon = midnight + 43_200_000_000
        #expect(run(quota, at: [noon, noon + 1, noon + 2, noon + 3]) == [true, true, true, false])
        #expect(LimitArithmetic.step(quota, stored: 3, now: noon) == .refuse(retryAfterMicroseconds: 43_200_000_000))
        #expect(LimitArithmetic.day(noon) == 20_000 && LimitArithmetic.day(midnight + 86_400_000_000) == 20_001)
    }

    @Test func keysSeparateWhatIsCountedSeparately() {
        let now: Int64 = 1_800_000_000_000_000
        let perAgent = fivePerMinute
        let perTool = CallLimit(id: "r", kind: .rate, count: 5, periodSeconds: 60, burst: 5, per: ["agent", "tool"])
        func key(_ limit: CallLimit, agent: String = "a1", tool: String = "s__t", org: String = "acme") -> String {
            RateLimiter.key(limit, org: org, agent: agent, user: "u1", tool: tool, now: now)
        }
        #expect(key(perAgent) == key(perAgent, tool: "s__other"))
        #expect(key(perAgent) != key(perAgent, agent: "a2"))
        #expect(key(perAgent) != key(perAgent, org: "globex"))
        #expect(key(perTool) != key(perTool, tool: "s__other"))
        #expect(key(perAgent).hasPrefix("l.") && key(perAgent).count == 34)
        let quota = CallLimit(id: "r", kind: .quota, count: 5, periodSeconds: 86_400, burst: 5, per: ["agent"])
        #expect(key(quota) != key(perAgent))
    }
}

/// Resource URIs a server could resolve elsewhere than their text says are never decided on.
@Suite struct AmbiguousResourceURITests {
    @Test(arguments: [
        "docs+file:///public/../secret", "docs+file:///public/./a", "docs+file:///public/..", "docs+file:///public/%2e%2e/secret",
        "docs+file:///public/%2E%2E%2Fsecret", "docs+file:///public\\..\\secret", "docs+bench://items/..",
    ])
    func dotSegmentsAndEncodedSeparatorsAreAmbiguous(_ uri: String) {
        #expect(PolicyStage.isAmbiguous(uri: uri))
    }

    @Test(arguments: ["docs+file:///public/a.txt", "docs+bench://items/7", "docs+https://example.com/a..b/c.d", "docs+file:///public/.hidden"])
    func ordinaryURIsAreNot(_ uri: String) {
        #expect(!PolicyStage.isAmbiguous(uri: uri))
    }
}
