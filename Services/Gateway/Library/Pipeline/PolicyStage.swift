import WardenContracts
import WardenMCP
import WardenPolicyEngine

/// Decides a call before it is routed: the second and third permission layers (the org's policy,
/// the user's own), on the very request that will be forwarded. Tools (`tools/call`), prompts
/// (`prompts/get`) and resources (`resources/read`, `resources/subscribe`), and completions about a
/// prompt or a resource, are all decided. Deciding first means a denied call gets the same answer
/// whether or not the item exists. Without an authenticated agent (a gateway run with
/// `WARDEN_AUTH_REQUIRED=false`, for development) there is nobody to decide for, and nothing is
/// decided.
struct PolicyStage: Sendable {
    let decisions: PolicyDecisions?
    /// A resource URI a server listed under its own name (a link in a tool result), as the gateway
    /// names it (`server+uri`): policies name resources that way.
    var qualifyResource: (@Sendable (_ uri: String, _ org: String?, _ user: String?) -> String?)? = nil

    /// What a request asks for, as the policy names it; nil when it names nothing to decide.
    static func item(_ method: String, _ params: JSONValue?) -> (kind: ItemKind, name: String)? {
        switch method {
        case "tools/call": params?["name"]?.stringValue.map { (.tool, $0) }
        case "prompts/get": params?["name"]?.stringValue.map { (.prompt, $0) }
        case "resources/read", "resources/subscribe": params?["uri"]?.stringValue.map { (.resource, $0) }
        case "completion/complete":
            switch params?["ref"]?["type"]?.stringValue {
            case "ref/prompt": params?["ref"]?["name"]?.stringValue.map { (.prompt, $0) }
            case "ref/resource": params?["ref"]?["uri"]?.stringValue.map { (.resource, $0) }
            default: nil
            }
        default: nil
        }
    }

    /// What the call must honour once it runs, or why it does not run.
    /// Dot segments (`/../`, `/./`), backslashes and percent-encoded dots, slashes or backslashes.
    static func isAmbiguous(uri: String) -> Bool {
        let path = uri.lowercased()
        if path.contains("%2e") || path.contains("%2f") || path.contains("%5c") || path.contains("\\") { return true }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        return segments.contains { $0 == "." || $0 == ".." }
    }

    func run(_ request: ClientRequest) async -> Result<PolicyObligations, JSONRPCError> {
        guard let decisions, let agent = request.caller.agent else { return .success(PolicyObligations()) }
        // Nothing named: the route stage says what is wrong.
        guard let item = Self.item(request.method, request.params) else { return .success(PolicyObligations()) }
        let kind = item.kind
        var name = item.name
        if kind == .resource, ResourceNamespace.split(name) == nil, let qualified = qualifyResource?(name, agent.org, agent.user) {
            name = qualified
        }
        // A pattern like `docs+file:///public/*` must not admit `file:///public/../secret`: a URI
        // whose path a server could resolve elsewhere is never decided on, whatever the patterns.
        if kind == .resource, Self.isAmbiguous(uri: name) {
            return .failure(JSONRPCError(code: JSONRPCError.Code.policyDenied, message: "Denied by policy: \(name)"))
        }
        let arguments = kind == .resource ? nil : request.params?["arguments"]
        switch await decisions.decide(
            agent: agent, kind: kind, tool: name, arguments: arguments, clientAddress: request.clientAddress, client: agent.client)
        {
        case .allow(let obligations):
            // Only tool calls wait for approvers: a prompt or resource an `approve` rule names is not
            // served (nothing would run it later).
            if let approval = obligations.approval, kind != .tool {
                return .failure(
                    JSONRPCError(
                        code: JSONRPCError.Code.approvalRequired,
                        message: "\(name) needs approval (by \(approval.approvers)); only tool calls can wait for approval, so it was not served"))
            }
            return .success(obligations)
        case .deny: return .failure(JSONRPCError(code: JSONRPCError.Code.policyDenied, message: "Denied by policy: \(name)"))
        case .unavailable:
            return .failure(
                JSONRPCError(code: JSONRPCError.Code.policyUnavailable, message: "Policy is unavailable: \(name) was not run; try again shortly"))
        }
    }
}
