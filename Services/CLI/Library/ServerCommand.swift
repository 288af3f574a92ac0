import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import WardenContracts

/// `warden server …`: the gateway's registry of MCP servers, over its admin API. The admin token
/// comes from `$WARDEN_ADMIN_TOKEN` (never from arguments, so it stays out of process listings).
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Register and manage the MCP servers behind the gateway (admin token from $WARDEN_ADMIN_TOKEN).",
        subcommands: [List.self, Show.self, Add.self, Update.self, Enable.self, Disable.self, Remove.self]
    )

    struct Common: ParsableArguments {
        @OptionGroup var gateway: GatewayOptions
        @Flag(help: "Print JSON instead of a table.") var json = false
    }

    /// The fields `add` and `update` share.
    struct DefinitionOptions: ParsableArguments {
        @Option(help: "Transport: stdio, streamable-http or sse (default: stdio with --command, streamable-http with --server-url).")
        var transport: String?
        @Option(help: "Command that starts a stdio server (or give the whole command line after --).") var command: String?
        @Option(name: .customLong("arg"), help: "An argument for the command (repeat for several; after -- they may start with '-').") var args:
            [String] = []
        @Option(name: .customLong("env"), help: "NAME=VALUE for the server's environment (repeat).") var env: [String] = []
        @Option(help: "Working directory of a stdio server.") var cwd: String?
        @Option(name: .customLong("server-url"), help: "URL of a Streamable HTTP or legacy SSE server.") var serverURL: String?
        @Option(name: .customLong("header"), help: "NAME=VALUE sent to an HTTP server (repeat).") var headers: [String] = []
        @Option(help: "Expose only these tools (comma-separated server names; 'all' for every tool).") var exposeTools: String?
        @Option(help: "Expose only these prompts (comma-separated; 'all').") var exposePrompts: String?
        @Option(help: "Expose only these resources or URI templates (comma-separated; 'all').") var exposeResources: String?
        @Option(help: "When to start it: boot (one instance always runs) or lazy (on first use).") var start: String?
        @Option(help: "Stop an instance after this many seconds without a call.") var idleTimeout: Int?
        @Option(help: "Instances that may run at once (another starts while all are busy).") var maxInstances: Int?
        @Option(help: "Seconds a call to the server may take (default 30).") var callTimeout: Int?
        @Option(help: "Only this org's agents see the server (default: every org's; org admins always add to their own).") var org: String?
        @Option(
            help:
                "true: each user gives their own credentials (secret:// references resolve to the user's secrets; one instance per user); false: shared."
        ) var perUser: Bool?
        /// A stdio server's own command line, taken whole after `--`: its arguments may start with `-`.
        @Argument(parsing: .postTerminator, help: "After --: the stdio server's command and its own arguments.") var commandLine: [String] = []

        func pairs(_ values: [String], _ flag: String) throws -> [String: String]? {
            guard !values.isEmpty else { return nil }
            var result: [String: String] = [:]
            for value in values {
                guard let cut = value.firstIndex(of: "="), cut != value.startIndex else { throw ValidationError("--\(flag) takes NAME=VALUE") }
                result[String(value[..<cut])] = String(value[value.index(after: cut)...])
            }
            return result
        }

        static func list(_ text: String?) -> JSONField? {
            guard let text else { return nil }
            if text == "all" { return .null }
            return .array(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }

        /// The definition's members these options set, as JSON.
        func fields() throws -> [String: JSONField] {
            var fields: [String: JSONField] = [:]
            if let transport { fields["transport"] = .string(transport) }
            if let command { fields["command"] = .string(command) }
            if !args.isEmpty { fields["args"] = .array(args) }
            if let first = commandLine.first {
                guard command == nil, args.isEmpty else {
                    throw ValidationError("give the server's command either with --command and --arg or after --, not both")
                }
                fields["command"] = .string(first)
                fields["args"] = .array(Array(commandLine.dropFirst()))
            }
            if let env = try pairs(env, "env") { fields["env"] = .map(env) }
            if let cwd { fields["cwd"] = .string(cwd) }
            if let serverURL { fields["url"] = .string(serverURL) }
            if let headers = try pairs(headers, "header") { fields["headers"] = .map(headers) }
            var expose: [String: JSONField] = [:]
            if let tools = Self.list(exposeTools) { expose["tools"] = tools }
            if let prompts = Self.list(exposePrompts) { expose["prompts"] = prompts }
            if let resources = Self.list(exposeResources) { expose["resources"] = resources }
            if !expose.isEmpty { fields["expose"] = .object(expose) }
            if let start { fields["start"] = .string(start) }
            if let idleTimeout { fields["idleTimeout"] = .int(idleTimeout) }
            if let maxInstances { fields["maxInstances"] = .int(maxInstances) }
            if let callTimeout { fields["callTimeout"] = .int(callTimeout) }
            if let org { fields["org"] = .string(org) }
            if let perUser { fields["perUser"] = .bool(perUser) }
            return fields
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List registered servers and their state.")
        @OptionGroup var common: Common

        func run() async throws {
            let body = try await AdminClient(common.gateway).send(.GET, "")
            if common.json { return print(String(decoding: body, as: UTF8.self)) }
            struct Listing: Decodable { var servers: [MCPServerView] }
            let listing = try JSONDecoder().decode(Listing.self, from: body)
            print(ServerTable.render(listing.servers))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one server (secret values are never shown).")
        @OptionGroup var common: Common
        @Argument(help: "Server id.") var id: String

        func run() async throws {
            let body = try await AdminClient(common.gateway).send(.GET, "/\(id)")
            if common.json { return print(String(decoding: body, as: UTF8.self)) }
            print(ServerTable.describe(try JSONDecoder().decode(MCPServerView.self, from: body)))
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a server; running gateways start it at once.")
        @OptionGroup var common: Common
        @Argument(help: "Server id: 1-32 of a-z, 0-9 and '-'.") var id: String
        @OptionGroup var definition: DefinitionOptions
        @Flag(help: "Register it disabled.") var disabled = false

        func run() async throws {
            var fields = try definition.fields()
            fields["id"] = .string(id)
            if disabled { fields["enabled"] = .bool(false) }
            let body = try await AdminClient(common.gateway).send(.POST, "", body: JSONField.object(fields))
            if common.json { return print(String(decoding: body, as: UTF8.self)) }
            print("added \(id)")
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a server's settings; running gateways apply them at once.")
        @OptionGroup var common: Common
        @Argument(help: "Server id.") var id: String
        @OptionGroup var definition: DefinitionOptions

        func run() async throws {
            let fields = try definition.fields()
            guard !fields.isEmpty else { throw ValidationError("nothing to change: give at least one option") }
            let body = try await AdminClient(common.gateway).send(.PATCH, "/\(id)", body: JSONField.object(fields))
            if common.json { return print(String(decoding: body, as: UTF8.self)) }
            print("updated \(id)")
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a server.")
        @OptionGroup var common: Common
        @Argument(help: "Server id.") var id: String

        func run() async throws { try await ServerCommand.switchServer(id, on: true, common) }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a server: gateways stop it and leave it out of listings.")
        @OptionGroup var common: Common
        @Argument(help: "Server id.") var id: String

        func run() async throws { try await ServerCommand.switchServer(id, on: false, common) }
    }

    static func switchServer(_ id: String, on: Bool, _ common: Common) async throws {
        let body = try await AdminClient(common.gateway).send(.POST, "/\(id)/\(on ? "enable" : "disable")")
        print(common.json ? String(decoding: body, as: UTF8.self) : "\(on ? "enabled" : "disabled") \(id)")
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a server from the registry.")
        @OptionGroup var common: Common
        @Argument(help: "Server id.") var id: String

        func run() async throws {
            _ = try await AdminClient(common.gateway).send(.DELETE, "/\(id)")
            print(common.json ? #"{"removed":"\#(id)"}"# : "removed \(id)")
        }
    }
}

/// A JSON value built from CLI options.
indirect enum JSONField: Encodable {
    case string(String)
    case bool(Bool)
    case int(Int)
    case null
    case array([String])
    case ints([Int])
    case map([String: String])
    case object([String: JSONField])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .null: try container.encodeNil()
        case .array(let value): try container.encode(value)
        case .ints(let value): try container.encode(value)
        case .map(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// Calls `/admin/v1/servers…`; answers other than 2xx become errors carrying the gateway's message.
struct AdminClient {
    let base: String
    let timeout: Int
    /// The environment variable holding the bearer token sent.
    var credential = "WARDEN_ADMIN_TOKEN"

    init(_ gateway: GatewayOptions, path: String = AdminAPI.serversPath, credential: String = "WARDEN_ADMIN_TOKEN") {
        base = gateway.resolvedURL + path
        timeout = gateway.timeout
        self.credential = credential
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The gateway's error body: an RFC 9457 problem document with Warden's `code`.
    struct Problem: Decodable {
        var detail: String
        var code: String
    }

    /// A public document of the gateway (no credential sent).
    static func fetch(_ url: String) async throws -> Data {
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
        } catch {
            throw Failure(description: "cannot reach \(url): \(error)")
        }
        guard response.status == .ok else { throw Failure(description: "\(url) answered HTTP \(response.status.code)") }
        return Data(buffer: try await response.body.collect(upTo: 1 << 20))
    }

    func send(_ method: HTTPMethod, _ path: String, body: JSONField? = nil) async throws -> Data {
        try await send(method, path, json: try body.map { try JSONEncoder().encode($0) })
    }

    /// The bearer token from `credential`'s variable.
    func bearer() throws -> String {
        guard let token = ProcessInfo.processInfo.environment[credential], !token.isEmpty else {
            throw Failure(
                description: credential == "WARDEN_ADMIN_TOKEN"
                    ? "set WARDEN_ADMIN_TOKEN to an admin token of this gateway" : "set \(credential) (see warden user token)")
        }
        return token
    }

    func send(_ method: HTTPMethod, _ path: String, json: Data?) async throws -> Data {
        let token = try bearer()
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: json))
        }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(timeout)))
        } catch {
            throw Failure(description: "cannot reach the gateway at \(base): \(error)")
        }
        let data = Data(buffer: try await response.body.collect(upTo: 8 << 20))
        guard (200..<300).contains(response.status.code) else {
            let message =
                (try? JSONDecoder().decode(Problem.self, from: data)).map { "\($0.detail) (\($0.code))" }
                ?? "HTTP \(response.status.code)"
            throw Failure(description: message)
        }
        return data
    }
}

/// Human-readable output of `warden server`.
enum ServerTable {
    static func render(_ servers: [MCPServerView]) -> String {
        guard !servers.isEmpty else { return "no MCP servers registered (add one with: warden server add <id> --command … | --server-url …)" }
        var rows = [["ID", "ORG", "TRANSPORT", "ENABLED", "STATE", "INSTANCES", "TOOLS", "PROMPTS", "RESTARTS", "TARGET"]]
        for server in servers {
            rows.append([
                server.id, server.org ?? "(all)", server.transport, server.enabled ? "yes" : "no", server.state ?? "-",
                "\(server.instances ?? 0)/\(server.maxInstances ?? 1)", server.tools.map(String.init) ?? "-",
                server.prompts.map(String.init) ?? "-", server.restarts.map(String.init) ?? "-",
                server.url ?? ([server.command ?? ""] + (server.args ?? [])).joined(separator: " "),
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(
                in: .whitespaces)
        }
        for server in servers where server.detail != nil { lines.append("  \(server.id): \(server.detail!)") }
        return lines.joined(separator: "\n")
    }

    static func describe(_ server: MCPServerView) -> String {
        var lines = [
            "id         \(server.id)",
            "org        \(server.org ?? "(all orgs)")",
            "transport  \(server.transport)",
            "enabled    \(server.enabled ? "yes" : "no")",
            "state      \(server.state ?? "-")\(server.detail.map { " (\($0))" } ?? "")",
        ]
        if let command = server.command { lines.append("command    \(([command] + (server.args ?? [])).joined(separator: " "))") }
        if let cwd = server.cwd { lines.append("cwd        \(cwd)") }
        lines.append(
            "start      \(server.start ?? "boot"), at most \(server.maxInstances ?? 1) instance(s)\(server.idleTimeout.map { ", stopped after \($0) s idle" } ?? "")"
        )
        lines.append("timeout    \(server.callTimeout ?? 30) s per call")
        if let url = server.url { lines.append("url        \(url)") }
        if let names = server.envNames, !names.isEmpty { lines.append("env        \(names.joined(separator: ", ")) (values hidden)") }
        if let names = server.headerNames, !names.isEmpty { lines.append("headers    \(names.joined(separator: ", ")) (values hidden)") }
        func exposed(_ list: [String]?) -> String { list.map { $0.isEmpty ? "(none)" : $0.joined(separator: ", ") } ?? "all" }
        lines.append("tools      \(exposed(server.expose.tools))\(server.tools.map { " — \($0) listed" } ?? "")")
        lines.append("prompts    \(exposed(server.expose.prompts))")
        lines.append("resources  \(exposed(server.expose.resources))")
        return lines.joined(separator: "\n")
    }
}
