import NIOCore

/// How many NIO event-loop threads a service runs (`WARDEN_EVENT_LOOPS`): by default half the cores
/// NIO counts (a container's CPU limit included), at least one; the other half is left to Swift's
/// pool, which runs the handlers. NIO's own default (a loop per core) adds as many I/O threads as
/// the pool has, all taking turns on the same cores: on two cores, one loop instead of two cost the
/// gateway 13–16% less CPU a call over HTTP at the same throughput in three side-by-side runs (over
/// stdio, 13% less in two of them; BENCHMARKS.md, "Where a call's threads run").
package enum EventLoopThreads {
    package static let variable = "WARDEN_EVENT_LOOPS"

    package static func count(_ environment: [String: String], cores: Int = System.coreCount) throws(ConfigurationError) -> Int {
        try ServiceConfiguration.number(environment, variable, key: "event.loops", range: 1...1_024, unit: "threads", default: max(1, cores / 2))
    }

    /// Sets the count before anything uses NIO's shared event loops (first thing in a service's
    /// process: NIO refuses it later). NIO's own `NIO_SINGLETON_GROUP_LOOP_COUNT` is left to decide
    /// when it is set and `WARDEN_EVENT_LOOPS` is not.
    static func configure(_ environment: [String: String]) throws(ConfigurationError) {
        guard environment[variable] != nil || environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil else { return }
        NIOSingletons.groupLoopCountSuggestion = try count(environment)
    }
}
