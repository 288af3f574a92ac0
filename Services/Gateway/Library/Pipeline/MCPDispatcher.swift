import Logging
import WardenContracts
import WardenMCP

/// Answers one client request: the merged catalogue, and calls routed to the server that owns the
/// namespaced name or URI. Results from servers pass through unchanged.
///
/// The pipeline stages of later issues (authenticate, decide, resolve credentials, record) wrap
/// `forward` without changing this shape.
public struct MCPDispatcher: Sendable {
    public let registry: DownstreamRegistry
    public let calls: InFlightCalls
    public let subscriptions: ResourceSubscriptions
    let logger: Logger

    public init(registry: DownstreamRegistry, calls: InFlightCalls = InFlightCalls(), subscriptions: ResourceSubscriptions = ResourceSubscriptions(), logger: Logger) {
        self.registry = registry
        self.calls = calls
        self.subscriptions = subscriptions
        self.logger = logger
    }

    /// Answers one request. What the server sends while it runs (progress, logging) goes to
    /// `channel`, when the caller can take it.
    public func handle(method: String, params: JSONValue?, caller: MCPCaller, channel: CallChannel? = nil) async -> Result<JSONValue, JSONRPCError> {
        switch method {
        case "ping":
            return .success(.object([]))
        case "tools/list":
            await registry.warmUp()
            return Self.page(registry.catalogue(for: caller.org).tools, key: "tools", params: params)
        case "prompts/list":
            await registry.warmUp()
            return Self.page(registry.catalogue(for: caller.org).prompts, key: "prompts", params: params)
        case "resources/list":
            await registry.warmUp()
            return Self.page(registry.catalogue(for: caller.org).resources, key: "resources", params: params)
        case "resources/templates/list":
            await registry.warmUp()
            return Self.page(registry.catalogue(for: caller.org).resourceTemplates, key: "resourceTemplates", params: params)
        default:
            switch route(method: method, params: params, org: caller.org) {
            case .success(let target):
                if method == "resources/subscribe" || method == "resources/unsubscribe" {
                    guard let session = caller.sessionID else {
                        return .failure(.invalidRequest("subscriptions need a session (the handshake era)"))
                    }
                    let outcome = await forward(method: method, to: target, caller: caller, channel: channel)
                    if case .success = outcome, let uri = target.params["uri"]?.stringValue {
                        if method == "resources/subscribe" {
                            subscriptions.add(session: session, server: target.server, uri: uri)
                        } else {
                            subscriptions.remove(session: session, server: target.server, uri: uri)
                        }
                    }
                    return outcome
                }
                return await forward(method: method, to: target, caller: caller, channel: channel)
            case .failure(let error): return .failure(error)
            }
        }
    }

    /// Where a forwarded request goes: the server, and the params rewritten to its own names.
    struct Target: Equatable {
        var server: String
        var params: JSONValue
    }

    /// Finds the owning server from the namespaced name (tools, prompts), URI (resources) or
    /// reference (completion), among the servers an agent of `org` sees, and rewrites it to the
    /// server's own. Pure: no I/O.
    func route(method: String, params: JSONValue?, org: String? = nil) -> Result<Target, JSONRPCError> {
        let params = Self.removingEnvelope(params ?? .object([]))
        switch method {
        case "tools/call", "prompts/get":
            let kind = method == "tools/call" ? "tool" : "prompt"
            guard case .string(let qualified) = params["name"] ?? .null else { return .failure(.invalidParams("\"name\" is required")) }
            guard let (server, name) = ToolNamespace.split(qualified) else { return .failure(.invalidParams("unknown \(kind): \(qualified)")) }
            guard registry.exposure(of: server)?.allows(kind == "tool" ? .tool : .prompt, name) != false else {
                return .failure(.invalidParams("unknown \(kind): \(qualified)"))
            }
            return known(server, org, "unknown \(kind): \(qualified)").map { Target(server: $0, params: params.setting("name", to: .string(name))) }
        case "resources/read", "resources/subscribe", "resources/unsubscribe":
            guard case .string(let uri) = params["uri"] ?? .null else { return .failure(.invalidParams("\"uri\" is required")) }
            return resolve(uri: uri, org: org).map { Target(server: $0.server, params: params.setting("uri", to: .string($0.uri))) }
        case "completion/complete":
            guard let reference = params["ref"], case .string(let type) = reference["type"] ?? .null else {
                return .failure(.invalidParams("\"ref\" with a \"type\" is required"))
            }
            switch type {
            case "ref/prompt":
                guard case .string(let qualified) = reference["name"] ?? .null, let (server, name) = ToolNamespace.split(qualified) else {
                    return .failure(.invalidParams("unknown prompt in ref"))
                }
                return known(server, org, "unknown prompt: \(qualified)").map { Target(server: $0, params: params.setting("ref", to: reference.setting("name", to: .string(name)))) }
            case "ref/resource":
                guard case .string(let uri) = reference["uri"] ?? .null else { return .failure(.invalidParams("\"ref.uri\" is required")) }
                return resolve(uri: uri, org: org).map { Target(server: $0.server, params: params.setting("ref", to: reference.setting("uri", to: .string($0.uri)))) }
            default:
                return .failure(.invalidParams("unknown ref type \(type)"))
            }
        default:
            return .failure(.methodNotFound(method))
        }
    }

    private func known(_ server: String, _ org: String?, _ failure: String) -> Result<String, JSONRPCError> {
        registry.server(server, visibleTo: org) == nil ? .failure(.invalidParams(failure)) : .success(server)
    }

    /// A gateway URI (`<server>+<uri>`), or a server's own URI that exactly one server listed
    /// (resource links inside tool results pass through unchanged, so clients may send those back).
    private func resolve(uri: String, org: String?) -> Result<(server: String, uri: String), JSONRPCError> {
        var found: (server: String, uri: String)?
        if let (server, own) = ResourceNamespace.split(uri), registry.server(server, visibleTo: org) != nil {
            found = (server, own)
        } else if let server = registry.catalogue(for: org).serverListing(uri: uri) {
            found = (server, uri)
        }
        guard let found, registry.exposure(of: found.server)?.allowsResource(uri: found.uri) != false else {
            return .failure(JSONRPCError(code: -32002, message: "Resource not found: \(uri)"))
        }
        return .success(found)
    }

    /// Handshake-era servers refuse requests carrying the 2026-07-28 envelope, and it describes the
    /// client's link to the gateway, not the gateway's link to the server: it is not forwarded.
    static func removingEnvelope(_ params: JSONValue) -> JSONValue {
        guard case .object(let members)? = params["_meta"] else { return params }
        let kept = members.filter { !$0.key.hasPrefix("io.modelcontextprotocol/") }
        guard kept.count != members.count else { return params }
        if kept.isEmpty, case .object(let all) = params { return .object(all.filter { $0.key != "_meta" }) }
        return params.setting("_meta", to: .object(kept))
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

    /// Sends the request to its server and passes the answer back unchanged.
    func forward(method: String, to target: Target, caller: MCPCaller, channel: CallChannel?) async -> Result<JSONValue, JSONRPCError> {
        guard let pool = registry.server(target.server) else {
            return .failure(.invalidParams("unknown MCP server '\(target.server)'"))
        }
        let (number, params) = calls.begin(server: target.server, params: target.params, channel: channel ?? CallChannel(), caller: caller)
        defer { calls.end(number) }
        do {
            return .success(try await pool.call(method, params: params))
        } catch is CancellationError {
            return .failure(JSONRPCError(code: -32800, message: "Request cancelled"))
        } catch let error as DownstreamError {
            if let serverError = error.serverError { return .failure(serverError) }
            logger.warning("downstream call failed", metadata: ["mcp.server": "\(target.server)", "mcp.method": "\(method)", "error": "\(error)"])
            return .failure(JSONRPCError(code: -32603, message: error.description))
        } catch {
            return .failure(JSONRPCError(code: -32603, message: "MCP server '\(target.server)': the call failed"))
        }
    }
}
