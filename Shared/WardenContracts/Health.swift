import Foundation

/// State of one dependency of a service instance.
public struct DependencyCheck: Codable, Sendable, Equatable {
    public var ok: Bool
    /// Why it is not ok (for operators; no secrets).
    public var detail: String?

    public init(ok: Bool, detail: String? = nil) {
        self.ok = ok
        self.detail = detail
    }
}

/// How one service instance sees itself. Sent as its heartbeat and as the reply to a health request.
public struct InstanceHealth: Codable, Sendable, Equatable {
    public var service: WardenServiceName
    /// Unique per process: `<host>-<pid>-<random>`.
    public var instanceID: String
    public var version: String
    public var startedAt: Date
    /// Ready to serve: its database and NATS are reachable and migrations are applied.
    public var ready: Bool
    /// False in the last heartbeat of an instance that is shutting down.
    public var alive: Bool
    /// `database`, `nats`, `migrations`, ...
    public var checks: [String: DependencyCheck]

    public init(
        service: WardenServiceName,
        instanceID: String,
        version: String,
        startedAt: Date,
        ready: Bool,
        alive: Bool = true,
        checks: [String: DependencyCheck]
    ) {
        self.service = service
        self.instanceID = instanceID
        self.version = version
        self.startedAt = startedAt
        self.ready = ready
        self.alive = alive
        self.checks = checks
    }
}

/// Empty request body.
public struct EmptyBody: Codable, Sendable, Equatable {
    public init() {}
}

/// Health of one service as the gateway sees it across all its instances.
public struct ServiceHealthSummary: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        /// At least one instance is ready.
        case up
        /// Instances are alive but none is ready.
        case degraded
        /// No instance has been heard from recently.
        case down
    }

    public var service: WardenServiceName
    public var status: Status
    public var readyInstances: Int
    public var instances: [InstanceHealth]
    /// Versions reported by the instances (more than one during a rolling upgrade).
    public var versions: [String]

    public init(service: WardenServiceName, status: Status, readyInstances: Int, instances: [InstanceHealth], versions: [String]) {
        self.service = service
        self.status = status
        self.readyInstances = readyInstances
        self.instances = instances
        self.versions = versions
    }
}

/// The gateway's `/readyz` body, read by `warden status` and `make up`.
public struct MeshStatus: Codable, Sendable, Equatable {
    /// `ready`: this gateway and every service are up; `degraded`: this gateway is ready but some service
    /// is not; `not_ready`: this gateway itself cannot serve.
    public var status: String
    /// This gateway instance's own health.
    public var gateway: InstanceHealth
    public var services: [ServiceHealthSummary]
    /// The downstream MCP servers as this gateway instance sees them (absent from older gateways).
    public var mcpServers: [MCPServerHealth]?

    public init(status: String, gateway: InstanceHealth, services: [ServiceHealthSummary], mcpServers: [MCPServerHealth]? = nil) {
        self.status = status
        self.gateway = gateway
        self.services = services
        self.mcpServers = mcpServers
    }
}

/// One downstream MCP server's state in a gateway instance.
public struct MCPServerHealth: Codable, Sendable, Equatable {
    public var id: String
    /// `starting`, `ready`, `failed` or `stopped`.
    public var state: String
    /// Why it is not ready (no secrets).
    public var detail: String?
    public var tools: Int
    public var prompts: Int
    public var restarts: Int

    public init(id: String, state: String, detail: String?, tools: Int, prompts: Int, restarts: Int) {
        self.id = id
        self.state = state
        self.detail = detail
        self.tools = tools
        self.prompts = prompts
        self.restarts = restarts
    }
}

/// The subjects of the platform's cross-service calls.
public enum PlatformSubjects {
    /// Every instance publishes its `InstanceHealth` here about once a second: `warden.heartbeat.<service>`.
    public static func heartbeat(_ service: WardenServiceName) -> String { "warden.heartbeat.\(service.rawValue)" }
    /// What the gateway subscribes to, to see all instances of all services.
    public static let allHeartbeats = "warden.heartbeat.>"

    /// Request/reply health check, answered by one instance of the service (queue group).
    public static func health(_ service: WardenServiceName) -> ServiceEndpoint<EmptyBody, InstanceHealth> {
        ServiceEndpoint(service, "health")
    }
}
