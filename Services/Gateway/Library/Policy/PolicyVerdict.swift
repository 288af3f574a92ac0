/// What the policy said about one call, as the pipeline needs it.
package enum PolicyVerdict: Sendable, Equatable {
    /// Allowed, with what the call must honour.
    case allow(PolicyObligations)
    case deny
    /// Allowed once people approve: who.
    case approve(String)
    /// The policy service did not answer in time: nothing runs.
    case unavailable(String)
}
