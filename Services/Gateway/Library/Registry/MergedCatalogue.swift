import WardenContracts
import WardenMCP

/// The tools, prompts, resources and resource templates of every ready downstream server under one
/// namespace: names become `<server id>__<name>` (`ToolNamespace`), URIs `<server id>+<uri>`
/// (`ResourceNamespace`). Every other field of each entry passes through
/// unchanged. Entries whose public name would break LLM tool-name rules are left out, with a reason.
/// A value type without I/O: rebuilt whenever a server's catalogue changes.
package struct MergedCatalogue: Sendable, Equatable {
    package private(set) var tools: [JSONValue] = []
    package private(set) var prompts: [JSONValue] = []
    package private(set) var resources: [JSONValue] = []
    package private(set) var resourceTemplates: [JSONValue] = []
    /// Why something is missing: servers not ready, names that cannot be exposed.
    package private(set) var omissions: [String] = []

    package init(servers: [DownstreamServerStatus], exposures: [String: Exposure] = [:]) {
        for server in servers.sorted(by: { $0.serverID < $1.serverID }) {
            guard ToolNamespace.isValidServerID(server.serverID) else {
                omissions.append("server '\(server.serverID)': not a valid server id")
                continue
            }
            guard server.state == .ready || server.state == .idle, let catalogue = server.catalogue else {
                omissions.append("server '\(server.serverID)': \(server.state.rawValue)\(server.detail.map { " (\($0))" } ?? "")")
                continue
            }
            let exposure = exposures[server.serverID] ?? .everything
            func exposed(_ entries: [JSONValue], _ kind: Exposure.Kind, _ field: String) -> [JSONValue] {
                entries.filter { exposure.allows(kind, $0[field]?.stringValue ?? "") }
            }
            tools += Self.namespaced(exposed(catalogue.tools, .tool, "name"), kind: "tool", server: server.serverID, omissions: &omissions)
            prompts += Self.namespaced(exposed(catalogue.prompts, .prompt, "name"), kind: "prompt", server: server.serverID, omissions: &omissions)
            resources += Self.mapped(exposed(catalogue.resources, .resource, "uri"), field: "uri", server: server.serverID, omissions: &omissions)
            resourceTemplates += Self.mapped(
                exposed(catalogue.resourceTemplates, .resource, "uriTemplate"), field: "uriTemplate", server: server.serverID, omissions: &omissions)
        }
    }

    private static func namespaced(_ entries: [JSONValue], kind: String, server: String, omissions: inout [String]) -> [JSONValue] {
        entries.compactMap { entry in
            guard case .string(let name) = entry["name"] ?? .null else {
                omissions.append("server '\(server)': a \(kind) without a name")
                return nil
            }
            guard let qualified = ToolNamespace.qualify(server: server, name: name) else {
                omissions.append(
                    "server '\(server)': \(kind) '\(name)' cannot be exposed (names allow [A-Za-z0-9_-], at most \(ToolNamespace.maximumLength) characters with the prefix)"
                )
                return nil
            }
            return entry.setting("name", to: .string(qualified))
        }
    }

    private static func mapped(_ entries: [JSONValue], field: String, server: String, omissions: inout [String]) -> [JSONValue] {
        entries.compactMap { entry in
            guard case .string(let uri) = entry[field] ?? .null, !uri.isEmpty else {
                omissions.append("server '\(server)': a resource without \"\(field)\"")
                return nil
            }
            return entry.setting(field, to: .string(ResourceNamespace.qualify(server: server, uri: uri)))
        }
    }

    /// The server that listed `uri` itself (a URI from a tool result's resource link, not prefixed),
    /// when exactly one did.
    package func serverListing(uri: String) -> String? {
        var owners = Set<String>()
        for resource in resources {
            guard case .string(let qualified) = resource["uri"] ?? .null, let (server, own) = ResourceNamespace.split(qualified), own == uri else {
                continue
            }
            owners.insert(server)
        }
        return owners.count == 1 ? owners.first : nil
    }
}
