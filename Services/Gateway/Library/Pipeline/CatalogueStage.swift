import WardenMCP
import WardenPolicyEngine

/// Requests the gateway answers itself from the merged catalogue: `ping` and the listings, each
/// showing only the servers the caller's org sees.
struct CatalogueStage: Sendable {
    let registry: DownstreamRegistry
    /// Tools are listed only when the policy lets the agent use them (nil: no policy, development).
    var policy: PolicyDecisions? = nil
    /// Tools are listed only with the definition their org approved (nil: no pins, development).
    var pins: ToolPins? = nil

    /// Entries per page of a merged listing.
    static let pageSize = 200

    static let listings: [String: String] = [
        "tools/list": "tools", "prompts/list": "prompts", "resources/list": "resources", "resources/templates/list": "resourceTemplates",
    ]

    /// The answer, or nil when the request is for a server.
    func run(_ request: ClientRequest) async -> Result<JSONValue, JSONRPCError>? {
        if request.method == "ping" { return .success(.object([])) }
        guard let key = Self.listings[request.method] else { return nil }
        let (org, user) = (request.caller.org, request.caller.agent?.user)
        await registry.warmUp(org: org, user: user)
        let catalogue = registry.catalogue(for: org, user: user)
        var items: [JSONValue]
        switch key {
        case "tools":
            items = catalogue.tools
            if let pins, let org {
                guard let usable = await pins.usable(org: org, tools: catalogue.tools) else {
                    return .failure(
                        JSONRPCError(code: JSONRPCError.Code.policyUnavailable, message: "Tool pins are unavailable: the tools cannot be listed"))
                }
                items = items.filter { $0["name"]?.stringValue.map(usable.contains) ?? false }
            }
            if let policy, let agent = request.caller.agent {
                let names = items.compactMap { $0["name"]?.stringValue }
                guard let visible = await policy.visible(agent: agent, tools: names, client: agent.client) else {
                    return .failure(
                        JSONRPCError(code: JSONRPCError.Code.policyUnavailable, message: "Policy is unavailable: the tools cannot be listed"))
                }
                return Self.page(items.filter { $0["name"]?.stringValue.map(visible.contains) ?? false }, key: key, params: request.params)
            }
        case "prompts": items = catalogue.prompts
        case "resources": items = catalogue.resources
        default: items = catalogue.resourceTemplates
        }
        if let policy, let agent = request.caller.agent {
            // Prompts by name; resources by URI, templates by the template as written (a
            // resources pattern that matches it: `docs+*`).
            let (kind, field): (ItemKind, String) =
                switch key {
                case "prompts": (.prompt, "name")
                case "resources": (.resource, "uri")
                default: (.resource, "uriTemplate")
                }
            let names = items.compactMap { $0[field]?.stringValue }
            guard let visible = await policy.visible(agent: agent, kind: kind, tools: names, client: agent.client) else {
                return .failure(
                    JSONRPCError(code: JSONRPCError.Code.policyUnavailable, message: "Policy is unavailable: the \(key) cannot be listed"))
            }
            items = items.filter { $0[field]?.stringValue.map(visible.contains) ?? false }
        }
        return Self.page(items, key: key, params: request.params)
    }

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
}
