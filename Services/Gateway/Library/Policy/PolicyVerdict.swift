/// What the policy said about one call, as the pipeline needs it.
package enum PolicyVerdict: Sendable, Equatable {
    /// Allowed, with what the call must honour (an approval first, when `obligations.approval` says).
    case allow(PolicyObligations)
    case deny
    /// The policy service did not answer in time: nothing runs.
    case unavailable(String)
}
