import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenMCP
import WardenServiceKit

/// `/admin/v1/servers`: add, list, show, update, enable, disable and remove registered MCP servers.
/// Changes are stored, then announced: every gateway replica applies them within moments.
package struct ServerAdminRoutes: Sendable {
    package static let path = AdminAPI.serversPath
    let registry: DownstreamRegistry
    let store: any ServerRegistryStore
    let access: AdminAccess
    let logger: Logger

    package init(registry: DownstreamRegistry, store: any ServerRegistryStore, access: AdminAccess, logger: Logger) {
        self.registry = registry
        self.store = store
        self.access = access
        self.logger = logger
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        let group = router.group(RouterPath(Self.path))
        @Sendable func id(_ context: WardenRequestContext) -> String { context.parameters.get("id") ?? "" }
        group.get { request, _ in await authorized(request) { try await list($0) } }
        group.post { request, _ in await authorized(request) { try await add(request, by: $0) } }
        group.get(":id") { request, context in await authorized(request) { try await show(id(context), by: $0) } }
        group.patch(":id") { request, context in await authorized(request) { try await update(id(context), request, by: $0) } }
        group.post(":id/enable") { request, context in await authorized(request) { try await setEnabled(id(context), true, by: $0) } }
        group.post(":id/disable") { request, context in await authorized(request) { try await setEnabled(id(context), false, by: $0) } }
        group.delete(":id") { request, context in await authorized(request) { try await remove(id(context), by: $0) } }
    }

    /// The one place registry errors become HTTP answers. The platform manages every server; an
    /// org admin only the servers of its own org (shared servers and other orgs' are not found).
    private func authorized(_ request: Request, _ body: (AdminPrincipal) async throws -> Response) async -> Response {
        let principal: AdminPrincipal
        switch await access.principal(request) {
        case .refused(let response): return response
        case .allowed(let allowed): principal = allowed
        }
        do {
            return try await body(principal)
        } catch let error as RegistryError {
            return AdminProblem(error).response
        } catch {
            logger.error("server registry unavailable", metadata: ["error": "\(error)"])
            return AdminProblem(.unavailable, "the server registry is unavailable; try again").response
        }
    }

    func views(_ definitions: [MCPServerDefinition]) -> [MCPServerView] {
        let running = registry.servers
        return definitions.map { definition in
            var view = definition.view
            if let status = running[definition.id]?.status {
                view.state = status.state.rawValue
                view.detail = status.detail
                view.tools = status.catalogue?.tools.count
                view.prompts = status.catalogue?.prompts.count
                view.restarts = status.restarts
                view.instances = running[definition.id]?.instanceCount
            } else {
                view.state = definition.enabled ? "starting" : "disabled"
            }
            return view
        }
    }

    /// Whether `principal` manages `definition`: the platform every server, an org admin its org's.
    static func manages(_ principal: AdminPrincipal, _ definition: MCPServerDefinition) -> Bool {
        switch principal {
        case .platform: true
        case .org(let org, _): definition.org == org
        }
    }

    func list(_ principal: AdminPrincipal) async throws -> Response {
        Self.json(.ok, ["servers": views(try await store.all().filter { Self.manages(principal, $0) })])
    }

    func find(_ id: String, by principal: AdminPrincipal) async throws -> MCPServerDefinition {
        guard let definition = try await store.all().first(where: { $0.id == id }), Self.manages(principal, definition) else {
            throw RegistryError(.notFound, "no server with id '\(id.prefix(40))'")
        }
        return definition
    }

    func show(_ id: String, by principal: AdminPrincipal) async throws -> Response {
        Self.json(.ok, views([try await find(id, by: principal)])[0])
    }

    /// An org admin's servers belong to its org; naming another org is refused.
    static func checkOwnership(_ definition: inout MCPServerDefinition, by principal: AdminPrincipal) throws {
        guard case .org(let org, _) = principal else { return }
        if let named = definition.org, named != org { throw RegistryError(.invalid, "an org admin manages the servers of org '\(org)' only") }
        definition.org = org
    }

    func add(_ request: Request, by principal: AdminPrincipal) async throws -> Response {
        var definition: MCPServerDefinition
        do {
            definition = try JSONDecoder().decode(
                MCPServerDefinition.self, from: Data(try await request.body.collect(upTo: 64 << 10).readableBytesView))
        } catch {
            throw RegistryError(.invalid, "the body must be a server definition in JSON (id, and command or url): \(Self.decodingProblem(error))")
        }
        try Self.checkOwnership(&definition, by: principal)
        if let problem = definition.problem ?? definition.plaintextCredentialProblem { throw RegistryError(.invalid, problem) }
        try await store.insert(definition)
        registry.announceChange()
        logger.info("MCP server added", metadata: ["mcp.server": "\(definition.id)", "mcp.transport": "\(definition.transport)"])
        return Self.json(.created, views([definition])[0])
    }

    /// A partial definition: members present replace the stored ones; `null` clears one.
    func update(_ id: String, _ request: Request, by principal: AdminPrincipal) async throws -> Response {
        let current = try await find(id, by: principal)
        let patch: JSONValue
        do {
            patch = try JSONParser().parse(try await request.body.collect(upTo: 64 << 10).readableBytesView)
        } catch {
            throw RegistryError(.invalid, "the body must be a JSON object")
        }
        guard case .object(let changes) = patch else { throw RegistryError(.invalid, "the body must be a JSON object") }
        if let newID = patch["id"], newID != .string(id) { throw RegistryError(.invalid, "the id cannot change; remove and add instead") }
        var merged = try JSONParser().parse(try JSONEncoder().encode(current))
        for (key, value) in changes where key != "id" {
            guard MCPServerDefinition.CodingKeys(rawValue: key) != nil else { throw RegistryError(.invalid, "unknown field '\(key.prefix(40))'") }
            if value == .null {
                if case .object(let members) = merged { merged = .object(members.filter { $0.key != key }) }
            } else {
                merged = merged.setting(key, to: value)
            }
        }
        // A change of transport drops what belonged to the old one unless the patch restates it.
        if changes.contains(where: { $0.key == "url" }) && !changes.contains(where: { $0.key == "transport" }) && current.transport == "stdio" {
            merged = merged.setting("transport", to: "streamable-http")
        }
        var definition: MCPServerDefinition
        do {
            definition = try JSONDecoder().decode(MCPServerDefinition.self, from: Data(merged.serialized()))
        } catch {
            throw RegistryError(.invalid, "the result is not a valid definition: \(Self.decodingProblem(error))")
        }
        try Self.checkOwnership(&definition, by: principal)
        if let problem = definition.problem ?? definition.plaintextCredentialProblem { throw RegistryError(.invalid, problem) }
        try await store.update(definition)
        registry.announceChange()
        logger.info("MCP server updated", metadata: ["mcp.server": "\(id)"])
        return Self.json(.ok, views([definition])[0])
    }

    func setEnabled(_ id: String, _ enabled: Bool, by principal: AdminPrincipal) async throws -> Response {
        var definition = try await find(id, by: principal)
        definition.enabled = enabled
        try await store.update(definition)
        registry.announceChange()
        logger.info(enabled ? "MCP server enabled" : "MCP server disabled", metadata: ["mcp.server": "\(id)"])
        return Self.json(.ok, views([definition])[0])
    }

    func remove(_ id: String, by principal: AdminPrincipal) async throws -> Response {
        _ = try await find(id, by: principal)
        try await store.delete(id)
        registry.announceChange()
        logger.info("MCP server removed", metadata: ["mcp.server": "\(id)"])
        return Response(status: .noContent)
    }

    /// A decoding error's gist, without echoing the body (it may hold secrets).
    static func decodingProblem(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: "not valid JSON"
        }
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
