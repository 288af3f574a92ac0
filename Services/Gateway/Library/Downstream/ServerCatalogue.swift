import WardenMCP

/// What one downstream server offers, as it listed it (raw JSON, so nothing is lost), plus what it
/// said about itself in `initialize`.
public struct ServerCatalogue: Sendable, Equatable {
    public var protocolVersion: String
    public var serverInfo: JSONValue
    public var capabilities: JSONValue
    public var tools: [JSONValue]
    public var prompts: [JSONValue]
    public var resources: [JSONValue]
    public var resourceTemplates: [JSONValue]

    public init(
        protocolVersion: String,
        serverInfo: JSONValue,
        capabilities: JSONValue,
        tools: [JSONValue] = [],
        prompts: [JSONValue] = [],
        resources: [JSONValue] = [],
        resourceTemplates: [JSONValue] = []
    ) {
        self.protocolVersion = protocolVersion
        self.serverInfo = serverInfo
        self.capabilities = capabilities
        self.tools = tools
        self.prompts = prompts
        self.resources = resources
        self.resourceTemplates = resourceTemplates
    }
}
