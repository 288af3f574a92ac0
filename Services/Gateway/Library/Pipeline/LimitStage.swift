import WardenMCP

/// Counts an allowed call against the policy's rate limits and quotas (`RateLimiter`, shared by
/// every replica), once the call is known to go ahead (routed, exposed, pinned): a refused call
/// counts against nothing. A limited call gets `-32043` with when to retry; counts that cannot be
/// made refuse the call (fail closed).
struct LimitStage: Sendable {
    let limiter: RateLimiter?

    func run(_ obligations: PolicyObligations, requested request: ClientRequest) async -> JSONRPCError? {
        guard !obligations.limits.isEmpty, let agent = request.caller.agent else { return nil }
        let name = request.params?["name"]?.stringValue ?? request.method
        guard let limiter else {
            return JSONRPCError(code: JSONRPCError.Code.policyUnavailable, message: "Rate limits are unavailable: \(name) was not run")
        }
        switch await limiter.admit(obligations.limits, org: agent.org, agent: agent.agent, user: agent.user, tool: name) {
        case .admitted: return nil
        case .limited(let limit, let retryAfter):
            return JSONRPCError(
                code: JSONRPCError.Code.rateLimited, message: "Rate limit '\(limit)' reached: \(name) was not run; retry after \(retryAfter) s",
                data: .object([("retryAfterSeconds", .number(String(retryAfter))), ("limit", .string(limit))]))
        case .unavailable:
            return JSONRPCError(
                code: JSONRPCError.Code.policyUnavailable, message: "Rate limits are unavailable: \(name) was not run; try again shortly")
        }
    }
}
