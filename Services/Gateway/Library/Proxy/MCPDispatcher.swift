import Logging
import WardenMCP

/// Answers one client request within a session: the merged catalogue, and calls routed to the
/// server that owns the namespaced name. Results from servers pass through unchanged.
///
/// The pipeline stages of later issues (authenticate, decide, resolve credentials, record) wrap
/// `forward` without changing this shape.
public struct MCPDispatcher: Sendable {
    public let registry: DownstreamRegistry
    let logger: Logger

    public init(registry: DownstreamRegistry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    public func handle(method: String, params: JSONValue?, session: MCPSession) async -> Result<JSONValue, JSONRPCError> {
        switch method {
        case "ping":
            return .success(.object([]))
        case "tools/list":
            return .success(.object([("tools", .array(registry.catalogue.tools))]))
        case "prompts/list":
            return .success(.object([("prompts", .array(registry.catalogue.prompts))]))
        case "resources/list":
            return .success(.object([("resources", .array([]))]))
        case "resources/templates/list":
            return .success(.object([("resourceTemplates", .array([]))]))
        case "tools/call", "prompts/get":
            return await forward(method: method, params: params)
        default:
            return .failure(.methodNotFound(method))
        }
    }

    /// Routes by the namespaced `name` in `params` and forwards with the server's own name.
    func forward(method: String, params: JSONValue?) async -> Result<JSONValue, JSONRPCError> {
        guard let params, case .string(let qualified) = params["name"] ?? .null else {
            return .failure(.invalidParams("\"name\" is required"))
        }
        guard let (serverID, name) = ToolNamespace.split(qualified), let supervisor = registry.supervisors[serverID] else {
            return .failure(.invalidParams("unknown \(method == "tools/call" ? "tool" : "prompt"): \(qualified)"))
        }
        do {
            return .success(try await supervisor.call(method, params: params.setting("name", to: .string(name))))
        } catch let error as DownstreamError {
            if let serverError = error.serverError { return .failure(serverError) }
            logger.warning("downstream call failed", metadata: ["mcp.server": "\(serverID)", "mcp.method": "\(method)", "error": "\(error)"])
            return .failure(JSONRPCError(code: -32603, message: error.description))
        } catch {
            return .failure(JSONRPCError(code: -32603, message: "MCP server '\(serverID)': the call failed"))
        }
    }
}
