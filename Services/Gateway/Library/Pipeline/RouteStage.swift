import WardenMCP

/// Stage 4: which server a request is for. The namespaced name (tools, prompts), URI (resources) or
/// reference (completion) names the server among those the caller's org sees (another org's server
/// is unknown) and is rewritten to the server's own. Pure: no I/O.
struct RouteStage: Sendable {
    let registry: DownstreamRegistry

    func run(method: String, params: JSONValue?, org: String?) -> Result<RouteTarget, JSONRPCError> {
        let params = Self.removingEnvelope(params ?? .object([]))
        switch method {
        case "tools/call", "prompts/get":
            let kind = method == "tools/call" ? "tool" : "prompt"
            guard case .string(let qualified) = params["name"] ?? .null else { return .failure(.invalidParams("\"name\" is required")) }
            guard let (server, name) = ToolNamespace.split(qualified), registry.server(server, visibleTo: org) != nil else {
                return .failure(.invalidParams("unknown \(kind): \(qualified)"))
            }
            return .success(
                RouteTarget(server: server, item: kind == "tool" ? .tool(name) : .prompt(name), params: params.setting("name", to: .string(name))))
        case "resources/read", "resources/subscribe", "resources/unsubscribe":
            guard case .string(let uri) = params["uri"] ?? .null else { return .failure(.invalidParams("\"uri\" is required")) }
            return resolve(uri: uri, org: org).map {
                RouteTarget(server: $0.server, item: .resource(uri: $0.uri), params: params.setting("uri", to: .string($0.uri)))
            }
        case "completion/complete":
            guard let reference = params["ref"], case .string(let type) = reference["type"] ?? .null else {
                return .failure(.invalidParams("\"ref\" with a \"type\" is required"))
            }
            switch type {
            case "ref/prompt":
                guard case .string(let qualified) = reference["name"] ?? .null, let (server, name) = ToolNamespace.split(qualified) else {
                    return .failure(.invalidParams("unknown prompt in ref"))
                }
                guard registry.server(server, visibleTo: org) != nil else { return .failure(.invalidParams("unknown prompt: \(qualified)")) }
                return .success(
                    RouteTarget(server: server, item: .prompt(name), params: params.setting("ref", to: reference.setting("name", to: .string(name)))))
            case "ref/resource":
                guard case .string(let uri) = reference["uri"] ?? .null else { return .failure(.invalidParams("\"ref.uri\" is required")) }
                return resolve(uri: uri, org: org).map {
                    RouteTarget(
                        server: $0.server, item: .resource(uri: $0.uri),
                        params: params.setting("ref", to: reference.setting("uri", to: .string($0.uri))))
                }
            default:
                return .failure(.invalidParams("unknown ref type \(type)"))
            }
        default:
            return .failure(.methodNotFound(method))
        }
    }

    /// A gateway URI (`<server>+<uri>`), or a server's own URI that exactly one server listed
    /// (resource links inside tool results pass through unchanged, so clients may send those back).
    private func resolve(uri: String, org: String?) -> Result<(server: String, uri: String), JSONRPCError> {
        if let (server, own) = ResourceNamespace.split(uri), registry.server(server, visibleTo: org) != nil {
            return .success((server, own))
        }
        if let server = registry.catalogue(for: org).serverListing(uri: uri) {
            return .success((server, uri))
        }
        return .failure(.resourceNotFound(uri))
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
}
