import WardenMCP

/// What one downstream server offers, as it listed it (raw JSON, so nothing is lost), plus what it
/// said about itself in `initialize`.
package struct ServerCatalogue: Sendable, Equatable {
    package var protocolVersion: String
    package var serverInfo: JSONValue
    package var capabilities: JSONValue
    package var tools: [JSONValue]
    package var prompts: [JSONValue]
    package var resources: [JSONValue]
    package var resourceTemplates: [JSONValue]

    package init(
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
