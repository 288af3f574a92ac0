import Metrics
import Synchronization
import WardenMCP
import WardenServiceKit

/// The gateway's MCP metrics, with label values that stay few: methods the protocol defines (else
/// `other`), servers from the registry, and tools only as their server listed them, at most
/// `toolsPerServer` distinct names a server (then `other`). Never an argument or a client's free text.
final class MCPMetrics: Sendable {
    static let shared = MCPMetrics()

    let toolsPerServer: Int
    private let tools = Mutex<[String: Set<String>]>([:])
    /// Handles by label values: one lookup a call instead of one per metric in the registry.
    private let requests = Mutex<[[String]: (count: Counter, duration: Timer)]>([:])
    private let downstream = Mutex<[[String]: Timer]>([:])
    /// The stages' timers, made once.
    static let stageTimers: [String: Timer] = Dictionary(
        uniqueKeysWithValues: ["policy", "credentials", "approval", "forward"].map {
            ($0, Timer(label: "warden_mcp_stage_duration_seconds", dimensions: [("stage", $0)]))
        })

    init(toolsPerServer: Int = 100) {
        self.toolsPerServer = toolsPerServer
    }

    static let methods: Set<String> = [
        "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/templates/list", "resources/read",
        "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get", "completion/complete", "logging/setLevel",
        "server/discover",
    ]

    static func method(_ method: String) -> String { methods.contains(method) ? method : "other" }

    /// The label for a tool the server listed (`listed`), capped per server.
    func tool(_ name: String, server: String) -> String {
        tools.withLock { known in
            if known[server, default: []].contains(name) { return name }
            guard known[server, default: []].count < toolsPerServer else { return "other" }
            known[server, default: []].insert(name)
            return name
        }
    }

    /// What became of a request, as a label.
    static func outcome(_ result: Result<JSONValue, JSONRPCError>) -> String {
        switch result {
        case .success(let value): value["isError"] == .bool(true) ? "tool_error" : "ok"
        case .failure(let error):
            switch error.code {
            case JSONRPCError.Code.policyDenied: "denied"
            case JSONRPCError.Code.approvalRequired: "approval_required"
            case JSONRPCError.Code.rateLimited: "rate_limited"
            case JSONRPCError.Code.policyUnavailable, JSONRPCError.Code.approvalsUnavailable, JSONRPCError.Code.auditUnavailable: "unavailable"
            case JSONRPCError.Code.credentialMissing: "credential_missing"
            case JSONRPCError.Code.requestCancelled: "cancelled"
            case JSONRPCError.Code.invalidParams, JSONRPCError.Code.invalidRequest, JSONRPCError.Code.methodNotFound: "invalid"
            case JSONRPCError.Code.resultTooLarge: "result_too_large"
            default: "error"
            }
        }
    }

    func record(method: String, server: String?, tool: String?, result: Result<JSONValue, JSONRPCError>, latency: Duration) {
        let labels = [Self.method(method), server ?? "", tool ?? "", Self.outcome(result)]
        let handles = requests.withLock { known in
            if let handles = known[labels] { return handles }
            let made = (
                Counter(
                    label: "warden_mcp_requests_total",
                    dimensions: [("method", labels[0]), ("server", labels[1]), ("tool", labels[2]), ("outcome", labels[3])]),
                Timer(label: "warden_mcp_request_duration_seconds", dimensions: [("method", labels[0]), ("server", labels[1])])
            )
            known[labels] = made
            return made
        }
        handles.count.increment()
        handles.duration.record(duration: latency)
    }

    /// Time from forwarding a request to `server` to its answer.
    func recordDownstream(server: String, method: String, _ duration: Duration) {
        let labels = [server, Self.method(method)]
        let timer = downstream.withLock { known in
            if let timer = known[labels] { return timer }
            let made = Timer(label: "warden_mcp_downstream_duration_seconds", dimensions: [("server", labels[0]), ("method", labels[1])])
            known[labels] = made
            return made
        }
        timer.record(duration: duration)
    }
}
