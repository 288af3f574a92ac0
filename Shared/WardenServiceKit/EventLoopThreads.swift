import NIOCore

/// How many NIO event-loop threads a service runs (`WARDEN_EVENT_LOOPS`, environment only: it is
/// read before the configuration file): by default half the cores NIO counts (a container's CPU
/// limit included), at least one. NIO's own default (a loop per core) adds as many I/O threads as
/// Swift's pool has, all taking turns on the same cores: on two cores, one loop instead of two cost
/// the gateway 12.7–15.7% less CPU a call over HTTP at the same throughput in three side-by-side runs
/// (BENCHMARKS.md, "Where a call's threads run"). Larger machines were not measured.
package enum EventLoopThreads {
    package static let variable = "WARDEN_EVENT_LOOPS"

    package static func count(_ environment: [String: String], cores: Int = System.coreCount) throws(ConfigurationError) -> Int {
        try ServiceConfiguration.number(environment, variable, key: "event.loops", range: 1...1_024, unit: "threads", default: max(1, cores / 2))
    }

    /// Whether `configure` leaves the count to NIO: `NIO_SINGLETON_GROUP_LOOP_COUNT` is set and
    /// `WARDEN_EVENT_LOOPS` is not (empty counts as not set, as for every Warden setting).
    package static func leavesToNIO(_ environment: [String: String]) -> Bool {
        (environment[variable] ?? "").isEmpty && environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] != nil
    }

    /// Sets the count before anything uses NIO's shared event loops: first thing in a service's
    /// process, since NIO stops the process (`fatalError`) if it is set after the group exists.
    static func configure(_ environment: [String: String]) throws(ConfigurationError) {
        guard !leavesToNIO(environment) else { return }
        NIOSingletons.groupLoopCountSuggestion = try count(environment)
    }
}
