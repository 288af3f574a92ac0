import WardenContracts

/// What an allowed call must honour: the limits it counts against (counted by `RateLimiter` before
/// it runs) and the largest result it may return.
package struct PolicyObligations: Sendable, Equatable {
    package var limits: [CallLimit] = []
    package var maxResultBytes: Int?

    package init(limits: [CallLimit] = [], maxResultBytes: Int? = nil) {
        self.limits = limits
        self.maxResultBytes = maxResultBytes
    }
}
