import WardenMCP

/// The gateway's side of the MCP handshake with a downstream server, and its listings.
package enum DownstreamHandshake {
    /// The version the gateway asks downstream servers for; they may answer with an older one.
    package static let requestedProtocolVersion = "2025-06-18"
    /// Versions the gateway accepts from downstream servers.
    package static let acceptedProtocolVersions: Set<String> = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]
    /// Pages followed per listing before the gateway stops (a server that never ends its cursor).
    package static let maximumPages = 100

    /// Initializes the server and lists what its capabilities say it has.
    package static func connect(_ transport: some DownstreamTransport, timeout: Duration) async throws -> ServerCatalogue {
        let initialize: JSONValue = .object([
            ("protocolVersion", .string(requestedProtocolVersion)),
            ("capabilities", .object([])),
            ("clientInfo", .object([("name", "warden-gateway"), ("version", "0.1.0")])),
        ])
        let result = try await transport.request("initialize", params: initialize, timeout: timeout)
        guard case .string(let version) = result["protocolVersion"] ?? .null, acceptedProtocolVersions.contains(version) else {
            throw DownstreamError(
                .protocolViolation, server: transport.serverID, "unsupported protocol version \(result["protocolVersion"]?.jsonText ?? "(none)")")
        }
        try await transport.notify("notifications/initialized", params: nil)
        let capabilities = result["capabilities"] ?? .object([])
        var catalogue = ServerCatalogue(
            protocolVersion: version,
            serverInfo: result["serverInfo"] ?? .object([]),
            capabilities: capabilities
        )
        if capabilities["tools"] != nil {
            catalogue.tools = try await list(transport, "tools/list", key: "tools", timeout: timeout)
        }
        if capabilities["prompts"] != nil {
            catalogue.prompts = try await list(transport, "prompts/list", key: "prompts", timeout: timeout)
        }
        if capabilities["resources"] != nil {
            catalogue.resources = try await list(transport, "resources/list", key: "resources", timeout: timeout)
            catalogue.resourceTemplates = try await list(transport, "resources/templates/list", key: "resourceTemplates", timeout: timeout)
        }
        return catalogue
    }

    /// Follows `nextCursor` until the listing ends.
    static func list(_ transport: some DownstreamTransport, _ method: String, key: String, timeout: Duration) async throws -> [JSONValue] {
        var items: [JSONValue] = []
        var cursor: JSONValue?
        for _ in 0..<maximumPages {
            let params: JSONValue? = cursor.map { .object([("cursor", $0)]) }
            let page = try await transport.request(method, params: params, timeout: timeout)
            guard case .array(let values) = page[key] ?? .array([]) else {
                throw DownstreamError(.protocolViolation, server: transport.serverID, "\(method) did not return an array \"\(key)\"")
            }
            items += values
            guard let next = page["nextCursor"], next != .null else { return items }
            cursor = next
        }
        throw DownstreamError(.protocolViolation, server: transport.serverID, "\(method) kept paginating past \(maximumPages) pages")
    }
}
