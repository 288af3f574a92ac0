/// When to restart a downstream server that stopped: exponential backoff from `initialDelay` to
/// `maximumDelay`, reset once a run has stayed up for `stableAfter`. A value type without I/O.
package struct RestartPolicy: Sendable, Equatable {
    package var initialDelay: Duration = .milliseconds(500)
    package var maximumDelay: Duration = .seconds(60)
    package var stableAfter: Duration = .seconds(30)
    private(set) var consecutiveFailures = 0

    package init() {}

    /// Records that a run ended after `uptime`; returns how long to wait before the next start.
    package mutating func delayAfterRun(lasting uptime: Duration) -> Duration {
        if uptime >= stableAfter { consecutiveFailures = 0 }
        consecutiveFailures += 1
        var delay = initialDelay
        for _ in 1..<consecutiveFailures {
            delay = delay * 2
            if delay >= maximumDelay { return maximumDelay }
        }
        return min(delay, maximumDelay)
    }
}
