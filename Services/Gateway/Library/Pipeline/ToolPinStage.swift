import WardenMCP

/// Calls a tool only with the definition its org approved (`ToolPins`): a tool whose definition
/// changed, or that waits for approval, is denied exactly like a tool the policy denies, so the
/// answer says nothing of why or whether it exists. Without an org (no authentication, development)
/// there are no pins to check.
struct ToolPinStage: Sendable {
    let pins: ToolPins?

    func run(_ target: RouteTarget, requested request: ClientRequest) async -> JSONRPCError? {
        guard let pins, case .tool = target.item, let org = request.caller.org else { return nil }
        let qualified = request.params?["name"]?.stringValue ?? "?"
        // `ExposureStage` found the tool in the server's listing; without it nothing is called.
        guard let listed = target.listed else {
            return JSONRPCError(code: JSONRPCError.Code.policyDenied, message: "Denied by policy: \(qualified)")
        }
        switch await pins.allows(org: org, tool: qualified, listed: listed.entry, revision: listed.revision) {
        case true?: return nil
        case false?: return JSONRPCError(code: JSONRPCError.Code.policyDenied, message: "Denied by policy: \(qualified)")
        case nil:
            return JSONRPCError(
                code: JSONRPCError.Code.policyUnavailable, message: "Tool pins are unavailable: \(qualified) was not run; try again shortly")
        }
    }
}
