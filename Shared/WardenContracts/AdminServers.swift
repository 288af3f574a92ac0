/// The admin API's types, shared by the gateway and `warden`.
public enum AdminAPI {
    /// Registered MCP servers: GET (list), POST (add), and `/<id>` GET, PATCH, DELETE,
    /// `/<id>/enable`, `/<id>/disable`.
    public static let serversPath = "/admin/v1/servers"
}

/// Which of a server's tools, prompts and resources the gateway exposes: the first permission
/// layer. `nil` exposes everything the server offers; a list exposes only those names (tools and
/// prompts by the server's own name, resources by the server's own URI or URI template).
public struct Exposure: Codable, Sendable, Equatable {
    public var tools: [String]?
    public var prompts: [String]?
    public var resources: [String]?

    public init(tools: [String]? = nil, prompts: [String]? = nil, resources: [String]? = nil) {
        self.tools = tools
        self.prompts = prompts
        self.resources = resources
    }

    public static let everything = Exposure()

    public enum Kind: String, Sendable { case tool, prompt, resource }

    public func allows(_ kind: Kind, _ name: String) -> Bool {
        let list: [String]? =
            switch kind {
            case .tool: tools
            case .prompt: prompts
            case .resource: resources
            }
        return list?.contains(name) ?? true
    }

    /// A read of `uri` is allowed when resources are not restricted, or the URI is an exposed one,
    /// or it starts with the fixed part of an exposed template (`file:///docs/{path}`).
    public func allowsResource(uri: String) -> Bool {
        guard let resources else { return true }
        return resources.contains { pattern in
            if let brace = pattern.firstIndex(of: "{") { return uri.hasPrefix(pattern[..<brace]) }
            return pattern == uri
        }
    }
}

/// A registered server as shown to operators, with its live state on the answering gateway.
public struct MCPServerView: Codable, Sendable, Equatable {
    public var id: String
    /// The org whose agents see the server; nil: every org's.
    public var org: String?
    public var transport: String
    public var enabled: Bool
    public var command: String?
    public var args: [String]?
    public var cwd: String?
    public var url: String?
    public var envNames: [String]?
    public var headerNames: [String]?
    /// The vault secrets its settings refer to (`secret://github/token`), never their values.
    public var secrets: [String]?
    /// Each user supplies their own credentials (nil: shared credentials).
    public var perUser: Bool?
    public var expose: Exposure
    public var start: String?
    public var idleTimeout: Int?
    public var maxInstances: Int?
    public var callTimeout: Int?
    public var state: String?
    public var detail: String?
    public var tools: Int?
    public var prompts: Int?
    public var restarts: Int?
    /// Instances running on the answering gateway.
    public var instances: Int?

    public init(
        id: String, org: String? = nil, transport: String, enabled: Bool, command: String? = nil, args: [String]? = nil, cwd: String? = nil,
        url: String? = nil,
        envNames: [String]? = nil, headerNames: [String]? = nil, expose: Exposure = .everything, start: String? = nil, idleTimeout: Int? = nil,
        maxInstances: Int? = nil, callTimeout: Int? = nil
    ) {
        self.id = id
        self.org = org
        self.transport = transport
        self.enabled = enabled
        self.command = command
        self.args = args
        self.cwd = cwd
        self.url = url
        self.envNames = envNames
        self.headerNames = headerNames
        self.expose = expose
        self.start = start
        self.idleTimeout = idleTimeout
        self.maxInstances = maxInstances
        self.callTimeout = callTimeout
    }
}
