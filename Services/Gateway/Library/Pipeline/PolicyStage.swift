import WardenMCP

/// Decides a tool call before it is routed: the second and third permission layers (the org's
/// policy, the user's own), on the very request that will be forwarded. Deciding first means a
/// denied call gets the same answer whether or not the tool exists. Without an authenticated agent
/// (a gateway run with `WARDEN_AUTH_REQUIRED=false`, for development) there is nobody to decide
/// for, and nothing is decided.
struct PolicyStage: Sendable {
    let decisions: PolicyDecisions?

    func run(_ request: ClientRequest) async -> JSONRPCError? {
        guard request.method == "tools/call", let decisions, let agent = request.caller.agent else { return nil }
        guard let name = request.params?["name"]?.stringValue else { return nil }  // the route stage says what is wrong
        switch await decisions.decide(agent: agent, tool: name, arguments: request.params?["arguments"], clientAddress: request.clientAddress) {
        case .allow: return nil
        case .deny: return JSONRPCError(code: JSONRPCError.Code.policyDenied, message: "Denied by policy: \(name)")
        case .approve(let approvers):
            return JSONRPCError(
                code: JSONRPCError.Code.approvalRequired,
                message: "\(name) needs approval (by \(approvers)); approvals are not available on this gateway yet, so the call was not run")
        case .unavailable:
            return JSONRPCError(code: JSONRPCError.Code.policyUnavailable, message: "Policy is unavailable: \(name) was not run; try again shortly")
        }
    }
}
