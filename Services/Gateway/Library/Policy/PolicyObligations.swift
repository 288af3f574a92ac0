import WardenContracts
import WardenPolicyEngine

/// What an allowed call must honour: the limits it counts against (counted by `RateLimiter` before
/// it runs) and the largest result it may return.
package struct PolicyObligations: Sendable, Equatable {
    package var limits: [CallLimit] = []
    package var maxResultBytes: Int?
    /// Arguments replaced by "[redacted]" in the call's audit record.
    package var redact: [JSONPath] = []

    package init(limits: [CallLimit] = [], maxResultBytes: Int? = nil, redact: [JSONPath] = []) {
        self.limits = limits
        self.maxResultBytes = maxResultBytes
        self.redact = redact
    }
}
