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
            return Self.page(registry.catalogue.tools, key: "tools", params: params)
        case "prompts/list":
            return Self.page(registry.catalogue.prompts, key: "prompts", params: params)
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

    /// Entries per page of a merged listing.
    public static let pageSize = 200

    /// One page of a merged listing. The cursor is opaque to clients (`o<offset>`); a cursor that is
    /// not one of ours is an invalid-params error, as the specification asks.
    static func page(_ items: [JSONValue], key: String, params: JSONValue?, pageSize: Int = pageSize) -> Result<JSONValue, JSONRPCError> {
        var offset = 0
        if let cursor = params?["cursor"] {
            guard case .string(let text) = cursor, text.hasPrefix("o"), let value = Int(text.dropFirst()), value >= 0, value <= items.count else {
                return .failure(.invalidParams("invalid cursor"))
            }
            offset = value
        }
        let end = min(offset + pageSize, items.count)
        var members: [(key: String, value: JSONValue)] = [(key, .array(Array(items[offset..<end])))]
        if end < items.count { members.append(("nextCursor", .string("o\(end)"))) }
        return .success(.object(members))
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
