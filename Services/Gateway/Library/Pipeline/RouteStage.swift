import WardenContracts
import WardenMCP

/// Stage 4: which server a request is for. The namespaced name (tools, prompts), URI (resources) or
/// reference (completion) names the server among those the caller's org sees (another org's server
/// is unknown) and is rewritten to the server's own. The server's pool and exposure lists come with
/// it, from one look-up; for a per-user server, the pool of the caller's user (made on first use).
/// No I/O.
struct RouteStage: Sendable {
    let registry: DownstreamRegistry

    func run(method: String, params: JSONValue?, org: String?, user: String? = nil) -> Result<RouteTarget, JSONRPCError> {
        let caller = Caller(org: org, user: user)
        let params = Self.removingEnvelope(params ?? .object([]))
        switch method {
        case "tools/call", "prompts/get":
            let kind = method == "tools/call" ? "tool" : "prompt"
            guard case .string(let qualified) = params["name"] ?? .null else { return .failure(.invalidParams("\"name\" is required")) }
            let item: (String) -> RouteTarget.Item = kind == "tool" ? { .tool($0) } : { .prompt($0) }
            return named(qualified, caller, unknown: "unknown \(kind): \(qualified)") {
                item($0)
            } rewriting: {
                params.setting("name", to: .string($0))
            }
        case "resources/read", "resources/subscribe", "resources/unsubscribe":
            guard case .string(let uri) = params["uri"] ?? .null else { return .failure(.invalidParams("\"uri\" is required")) }
            return resource(uri, caller) { params.setting("uri", to: .string($0)) }
        case "completion/complete":
            guard let reference = params["ref"], case .string(let type) = reference["type"] ?? .null else {
                return .failure(.invalidParams("\"ref\" with a \"type\" is required"))
            }
            switch type {
            case "ref/prompt":
                guard case .string(let qualified) = reference["name"] ?? .null, ToolNamespace.split(qualified) != nil else {
                    return .failure(.invalidParams("unknown prompt in ref"))
                }
                return named(qualified, caller, unknown: "unknown prompt: \(qualified)") {
                    .prompt($0)
                } rewriting: {
                    params.setting("ref", to: reference.setting("name", to: .string($0)))
                }
            case "ref/resource":
                guard case .string(let uri) = reference["uri"] ?? .null else { return .failure(.invalidParams("\"ref.uri\" is required")) }
                return resource(uri, caller) { params.setting("ref", to: reference.setting("uri", to: .string($0))) }
            default:
                return .failure(.invalidParams("unknown ref type \(type)"))
            }
        default:
            return .failure(.methodNotFound(method))
        }
    }

    /// A tool or prompt named `<server>__<name>`.
    private func named(
        _ qualified: String, _ caller: Caller, unknown: String, _ item: (String) -> RouteTarget.Item, rewriting rewrite: (String) -> JSONValue
    ) -> Result<RouteTarget, JSONRPCError> {
        guard let (server, name) = ToolNamespace.split(qualified), let found = registry.route(to: server, visibleTo: caller.org, user: caller.user)
        else {
            return .failure(.invalidParams(unknown))
        }
        return found.map { RouteTarget(server: server, route: $0, item: item(name), params: rewrite(name)) }.mapError(Self.refusal)
    }

    struct Caller {
        var org: String?
        var user: String?
    }

    static func refusal(_ refusal: DownstreamRegistry.RouteRefusal) -> JSONRPCError {
        switch refusal {
        case .noUser(let server):
            .invalidParams("server '\(server)' uses each user's own credentials, and this agent acts for no user")
        }
    }

    /// A gateway URI (`<server>+<uri>`), or a server's own URI that exactly one server listed
    /// (resource links inside tool results pass through unchanged, so clients may send those back).
    private func resource(_ uri: String, _ caller: Caller, rewriting rewrite: (String) -> JSONValue) -> Result<RouteTarget, JSONRPCError> {
        func target(_ server: String, _ own: String) -> Result<RouteTarget, JSONRPCError>? {
            registry.route(to: server, visibleTo: caller.org, user: caller.user).map {
                $0.map { RouteTarget(server: server, route: $0, item: .resource(uri: own), params: rewrite(own)) }.mapError(Self.refusal)
            }
        }
        if let (server, own) = ResourceNamespace.split(uri), let found = target(server, own) { return found }
        if let server = registry.catalogue(for: caller.org, user: caller.user).serverListing(uri: uri), let found = target(server, uri) {
            return found
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
