import Foundation
import Logging
import ServiceLifecycle
import WardenContracts
import WardenMCP

/// The downstream servers this gateway fronts, as configured at start-up.
///
/// Until the server registry (in the gateway's schema, with admin endpoints) lands, servers come from
/// the JSON file named by `WARDEN_MCP_SERVERS_FILE`:
/// `{"servers": [{"id": "time", "command": "uvx", "args": ["mcp-server-time"], "env": {}},
///               {"id": "docs", "url": "https://docs.example/mcp", "headers": {"Authorization": "…"}},
///               {"id": "old", "url": "https://old.example/sse", "transport": "sse"}]}`.
public final class DownstreamRegistry: Sendable {
    public let supervisors: [String: DownstreamSupervisor]

    public init(supervisors: [DownstreamSupervisor]) {
        self.supervisors = Dictionary(uniqueKeysWithValues: supervisors.map { ($0.serverID, $0) })
    }

    public var catalogue: MergedCatalogue {
        MergedCatalogue(servers: supervisors.values.map(\.status))
    }

    /// Every server's state, for `/readyz` and `warden status`.
    public var health: [MCPServerHealth] {
        supervisors.values.map(\.status).sorted { $0.serverID < $1.serverID }.map { status in
            MCPServerHealth(
                id: status.serverID,
                state: status.state.rawValue,
                detail: status.detail,
                tools: status.catalogue?.tools.count ?? 0,
                prompts: status.catalogue?.prompts.count ?? 0,
                restarts: status.restarts
            )
        }
    }

    /// Sends what servers say on their own to the clients it concerns: progress and logging to
    /// the call they belong to, `list_changed` to every standing stream on this replica. Requests
    /// from servers (sampling, elicitation, roots) are refused for now with a clear error.
    public func routeServerMessages(calls: InFlightCalls, streams: SessionStreams, logger: Logger) {
        for supervisor in supervisors.values {
            supervisor.setMessageHandler { server, message, transport in
                switch message {
                case .notification(let method, _) where DownstreamSupervisor.listings[method] != nil:
                    streams.broadcast(message)
                case .notification(let method, _):
                    if !calls.route(message, from: server) {
                        logger.debug("no client for a server notification", metadata: ["mcp.server": "\(server)", "mcp.method": "\(method)"])
                    }
                case .request(let id, let method, _):
                    let error = JSONRPCError(code: -32601, message: "\(method) is not available through the Warden gateway")
                    try? await transport.send(.error(id: id, error))
                default:
                    break
                }
            }
        }
    }

    public struct File: Codable, Sendable {
        public struct Server: Codable, Sendable {
            public var id: String
            /// "stdio" (needs `command`), "streamable-http" or "sse" (need `url`); inferred when absent.
            public var transport: String?
            public var command: String?
            public var args: [String]?
            public var env: [String: String]?
            public var cwd: String?
            public var url: String?
            public var headers: [String: String]?
        }

        public var servers: [Server]
    }

    /// Reads the servers file; errors name the problem (unknown id syntax, duplicates, bad JSON).
    public static func load(file path: String, logger: Logger) throws -> DownstreamRegistry {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw RegistryError(description: "cannot read \(path)")
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw RegistryError(description: "\(path) is not a valid servers file: \(error)")
        }
        var seen = Set<String>()
        var supervisors: [DownstreamSupervisor] = []
        for server in file.servers {
            guard ToolNamespace.isValidServerID(server.id) else {
                throw RegistryError(description: "server id '\(server.id)' in \(path): use 1-32 of a-z, 0-9 and '-'")
            }
            guard seen.insert(server.id).inserted else { throw RegistryError(description: "server id '\(server.id)' appears twice in \(path)") }
            supervisors.append(try supervisor(for: server, file: path, logger: logger))
        }
        return DownstreamRegistry(supervisors: supervisors)
    }

    static func supervisor(for server: File.Server, file path: String, logger: Logger) throws -> DownstreamSupervisor {
        let transport = server.transport ?? (server.url != nil ? "streamable-http" : "stdio")
        switch transport {
        case "stdio":
            guard let command = server.command, !command.isEmpty, server.url == nil else {
                throw RegistryError(description: "server '\(server.id)' in \(path): a stdio server needs \"command\" (and no \"url\")")
            }
            let spec = StdioLaunchSpec(command: command, arguments: server.args ?? [], environment: server.env ?? [:], workingDirectory: server.cwd)
            return DownstreamSupervisor(serverID: server.id, spec: spec, logger: logger)
        case "streamable-http", "sse":
            guard let url = server.url, let components = URLComponents(string: url), ["http", "https"].contains(components.scheme ?? ""), components.host?.isEmpty == false,
                server.command == nil
            else {
                throw RegistryError(description: "server '\(server.id)' in \(path): an HTTP server needs an http(s) \"url\" (and no \"command\")")
            }
            let spec = HTTPServerSpec(url: url, transport: transport == "sse" ? .sse : .streamableHTTP, headers: server.headers ?? [:])
            return DownstreamSupervisor(serverID: server.id, http: spec, logger: logger)
        default:
            throw RegistryError(description: "server '\(server.id)' in \(path): unknown transport '\(transport)' (use stdio, streamable-http or sse)")
        }
    }

    public struct RegistryError: Error, CustomStringConvertible {
        public var description: String
    }
}
