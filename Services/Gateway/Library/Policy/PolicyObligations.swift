import WardenContracts
import WardenPolicyEngine

/// What an allowed call must honour: the approval it waits for, the limits it counts against
/// (counted by `RateLimiter` before it runs) and the largest result it may return.
package struct PolicyObligations: Sendable, Equatable {
    package var limits: [CallLimit] = []
    package var maxResultBytes: Int?
    /// Arguments replaced by "[redacted]" in the call's audit record.
    package var redact: [JSONPath] = []
    /// People must approve the call before it runs (an `approve` rule).
    package var approval: ApprovalRequirement?

    package init(limits: [CallLimit] = [], maxResultBytes: Int? = nil, redact: [JSONPath] = [], approval: ApprovalRequirement? = nil) {
        self.limits = limits
        self.maxResultBytes = maxResultBytes
        self.redact = redact
        self.approval = approval
    }
}
