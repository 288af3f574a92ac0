import WardenContracts
import WardenMCP

/// Stage 4: which server a request is for. The namespaced name (tools, prompts), URI (resources) or
/// reference (completion) names the server among those the caller's org sees (another org's server
/// is unknown) and is rewritten to the server's own. The server's pool and exposure lists come with
/// it, from one look-up. Pure: no I/O.
struct RouteStage: Sendable {
    let registry: DownstreamRegistry

    func run(method: String, params: JSONValue?, org: String?) -> Result<RouteTarget, JSONRPCError> {
        let params = Self.removingEnvelope(params ?? .object([]))
        switch method {
        case "tools/call", "prompts/get":
            let kind = method == "tools/call" ? "tool" : "prompt"
            guard case .string(let qualified) = params["name"] ?? .null else { return .failure(.invalidParams("\"name\" is required")) }
            let item: (String) -> RouteTarget.Item = kind == "tool" ? { .tool($0) } : { .prompt($0) }
            return named(qualified, org: org, unknown: "unknown \(kind): \(qualified)") {
                item($0)
            } rewriting: {
                params.setting("name", to: .string($0))
            }
        case "resources/read", "resources/subscribe", "resources/unsubscribe":
            guard case .string(let uri) = params["uri"] ?? .null else { return .failure(.invalidParams("\"uri\" is required")) }
            return resource(uri, org: org) { params.setting("uri", to: .string($0)) }
        case "completion/complete":
            guard let reference = params["ref"], case .string(let type) = reference["type"] ?? .null else {
                return .failure(.invalidParams("\"ref\" with a \"type\" is required"))
            }
            switch type {
            case "ref/prompt":
                guard case .string(let qualified) = reference["name"] ?? .null, ToolNamespace.split(qualified) != nil else {
                    return .failure(.invalidParams("unknown prompt in ref"))
                }
                return named(qualified, org: org, unknown: "unknown prompt: \(qualified)") {
                    .prompt($0)
                } rewriting: {
                    params.setting("ref", to: reference.setting("name", to: .string($0)))
                }
            case "ref/resource":
                guard case .string(let uri) = reference["uri"] ?? .null else { return .failure(.invalidParams("\"ref.uri\" is required")) }
                return resource(uri, org: org) { params.setting("ref", to: reference.setting("uri", to: .string($0))) }
            default:
                return .failure(.invalidParams("unknown ref type \(type)"))
            }
        default:
            return .failure(.methodNotFound(method))
        }
    }

    /// A tool or prompt named `<server>__<name>`.
    private func named(
        _ qualified: String, org: String?, unknown: String, _ item: (String) -> RouteTarget.Item, rewriting rewrite: (String) -> JSONValue
    ) -> Result<RouteTarget, JSONRPCError> {
        guard let (server, name) = ToolNamespace.split(qualified), let found = registry.route(to: server, visibleTo: org) else {
            return .failure(.invalidParams(unknown))
        }
        return .success(RouteTarget(server: server, pool: found.pool, exposure: found.exposure, item: item(name), params: rewrite(name)))
    }

    /// A gateway URI (`<server>+<uri>`), or a server's own URI that exactly one server listed
    /// (resource links inside tool results pass through unchanged, so clients may send those back).
    private func resource(_ uri: String, org: String?, rewriting rewrite: (String) -> JSONValue) -> Result<RouteTarget, JSONRPCError> {
        func target(_ server: String, _ own: String) -> RouteTarget? {
            registry.route(to: server, visibleTo: org).map {
                RouteTarget(server: server, pool: $0.pool, exposure: $0.exposure, item: .resource(uri: own), params: rewrite(own))
            }
        }
        if let (server, own) = ResourceNamespace.split(uri), let found = target(server, own) { return .success(found) }
        if let server = registry.catalogue(for: org).serverListing(uri: uri), let found = target(server, uri) { return .success(found) }
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
