import Foundation
import WardenContracts
import WardenMCP

/// One downstream MCP server as an operator registered it (the gateway's schema). Values of `env`
/// and `headers` may be credentials: they are stored, used to launch or call the server, and never
/// shown again (`view` lists their names only).
package struct MCPServerDefinition: Codable, Sendable, Equatable {
    package var id: String
    /// "stdio", "streamable-http" or "sse".
    package var transport: String
    package var command: String?
    package var args: [String]?
    package var env: [String: String]?
    package var cwd: String?
    package var url: String?
    package var headers: [String: String]?
    package var enabled: Bool
    package var expose: Exposure
    /// "boot" (default): one instance runs from start-up; "lazy": started on first need.
    package var start: String?
    /// Seconds without a call after which an instance is stopped (nil: never).
    package var idleTimeout: Int?
    /// Instances that may run at once (default 1); another starts while all are busy.
    package var maxInstances: Int?
    /// Seconds a call to this server may take (default 30).
    package var callTimeout: Int?
    /// The org whose agents see and call this server; nil: every org's (a shared server). An org
    /// admin manages the servers of their own org.
    package var org: String?
    /// Each user supplies their own credentials: the server's `secret://path` references resolve to
    /// the calling agent's user's secret `users/<user>/path`, and each user gets instances of their own.
    package var perUser: Bool?

    package init(
        id: String, transport: String? = nil, command: String? = nil, args: [String]? = nil, env: [String: String]? = nil, cwd: String? = nil,
        url: String? = nil, headers: [String: String]? = nil, enabled: Bool = true, expose: Exposure = .everything,
        start: String? = nil, idleTimeout: Int? = nil, maxInstances: Int? = nil, callTimeout: Int? = nil, org: String? = nil,
        perUser: Bool? = nil
    ) {
        self.id = id
        self.transport = transport ?? (url != nil ? "streamable-http" : "stdio")
        self.command = command
        self.args = args
        self.env = env
        self.cwd = cwd
        self.url = url
        self.headers = headers
        self.enabled = enabled
        self.expose = expose
        self.start = start
        self.idleTimeout = idleTimeout
        self.maxInstances = maxInstances
        self.callTimeout = callTimeout
        self.org = org
        self.perUser = perUser
    }

    package var isPerUser: Bool { perUser == true }

    /// Whether an agent of `org` (nil: an anonymous caller, where the gateway allows those) sees
    /// this server: shared servers are everyone's, an org's server is that org's alone.
    package func isVisible(to org: String?) -> Bool { self.org == nil || self.org == org }

    var callDeadline: Duration { .seconds(callTimeout ?? 30) }

    /// A per-user server's instances start on a user's first call and stop after 5 idle minutes
    /// unless `idleTimeout` says otherwise.
    package var poolPolicy: PoolPolicy {
        if isPerUser {
            return PoolPolicy(startAtBoot: false, idleTimeout: .seconds(idleTimeout ?? 300), maximumInstances: maxInstances ?? 1)
        }
        return PoolPolicy(startAtBoot: start != "lazy", idleTimeout: idleTimeout.map { .seconds($0) }, maximumInstances: maxInstances ?? 1)
    }

    /// Why this definition cannot be used, or nil. Messages name the field and never echo secrets.
    package var problem: String? {
        guard ToolNamespace.isValidServerID(id) else { return "id '\(id.prefix(40))': use 1-32 of a-z, 0-9 and '-', starting with a letter or digit" }
        switch transport {
        case "stdio":
            guard let command, !command.isEmpty else { return "server '\(id)': a stdio server needs a command" }
            guard url == nil, headers == nil else { return "server '\(id)': a stdio server takes no url or headers" }
        case "streamable-http", "sse":
            guard let url else { return "server '\(id)': an HTTP server needs an http(s) url" }
            let parsed: CredentialURL
            do { parsed = try CredentialURL(parsing: url) } catch { return "server '\(id)': url: \(error)" }
            guard let components = URLComponents(string: parsed.placeholderURL), ["http", "https"].contains(components.scheme?.lowercased() ?? ""),
                components.host?.isEmpty == false
            else { return "server '\(id)': an HTTP server needs an http(s) url" }
            guard command == nil, args == nil, env == nil, cwd == nil else {
                return "server '\(id)': an HTTP server takes no command, args, env or cwd"
            }
            if let headers, let bad = headers.keys.first(where: { !Self.isHeaderName($0) }) {
                return "server '\(id)': header name '\(bad.prefix(40))' is not valid"
            }
        default:
            return "server '\(id)': transport must be stdio, streamable-http or sse"
        }
        if let org, org.wholeMatch(of: /[a-z0-9][a-z0-9-]{0,31}/) == nil { return "server '\(id)': org '\(org.prefix(40))' is not an org id" }
        if isPerUser, org == nil { return "server '\(id)': a per-user server belongs to an org (its users' secrets are that org's)" }
        if let start, !["boot", "lazy"].contains(start) { return "server '\(id)': start must be boot or lazy" }
        if let idleTimeout, !(1...86_400).contains(idleTimeout) { return "server '\(id)': idleTimeout must be 1 to 86400 seconds" }
        if let maxInstances, !(1...32).contains(maxInstances) { return "server '\(id)': maxInstances must be 1 to 32" }
        if let callTimeout, !(1...3_600).contains(callTimeout) { return "server '\(id)': callTimeout must be 1 to 3600 seconds" }
        if let env, let bad = env.keys.first(where: { $0.isEmpty || $0.contains("=") || $0.contains("\0") }) {
            return "server '\(id)': environment variable name '\(bad.prefix(40))' is not valid"
        }
        for (setting, values) in [(LiteralCredentialCheck.Setting.environment, env), (.header, headers)] {
            for (name, value) in (values ?? [:]).sorted(by: { $0.key < $1.key }) {
                let template: CredentialTemplate
                do { template = try CredentialTemplate(parsing: value) } catch {
                    return "server '\(id)': \(setting.rawValue) '\(name.prefix(64))': \(error)"
                }
                if setting == .environment, template.references.contains(where: { $0.kind == .oauth }) {
                    return
                        "server '\(id)': environment '\(name.prefix(64))': oauth:// references go in headers (an access token expires, and a process's environment is fixed when it starts)"
                }
            }
        }
        return nil
    }

    /// Why this definition may not be stored as given: a value that looks like a credential in
    /// plain text (`LiteralCredentialCheck`), or nil.
    package var plaintextCredentialProblem: String? {
        for (setting, values) in [(LiteralCredentialCheck.Setting.environment, env), (.header, headers)] {
            for (name, value) in (values ?? [:]).sorted(by: { $0.key < $1.key }) {
                guard let template = try? CredentialTemplate(parsing: value) else { continue }
                if let problem = LiteralCredentialCheck.problem(server: id, setting: setting, name: name, template: template) { return problem }
            }
        }
        for (name, template) in (url.flatMap { try? CredentialURL(parsing: $0) }?.queryItems ?? []) {
            if let problem = LiteralCredentialCheck.problem(server: id, setting: .query, name: name, template: template) { return problem }
        }
        return nil
    }

    /// The secrets the settings refer to (paths in the server's org, or the shared secrets).
    package var secretReferences: [String] {
        Set(
            (Array((env ?? [:]).values) + Array((headers ?? [:]).values)).flatMap { value in
                ((try? CredentialTemplate(parsing: value))?.references ?? []).map(\.description)
            } + ((url.flatMap { try? CredentialURL(parsing: $0) })?.references ?? []).map(\.description)
        ).sorted()
    }

    static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                (0x21...0x7E).contains(byte) && !"()<>@,;:\\\"/[]?={}".utf8.contains(byte)
            }
    }

    /// Two definitions that launch or reach the server the same way (a change elsewhere, such as
    /// exposure, does not restart it).
    func sameConnection(as other: MCPServerDefinition) -> Bool {
        transport == other.transport && command == other.command && args == other.args && env == other.env && cwd == other.cwd
            && url == other.url && headers == other.headers && poolPolicy == other.poolPolicy && callTimeout == other.callTimeout
            && isPerUser == other.isPerUser && org == other.org
    }

    /// What admin endpoints and the CLI show: no secret values.
    package var view: MCPServerView {
        var view = MCPServerView(
            id: id, org: org, transport: transport, enabled: enabled, command: command, args: args, cwd: cwd,
            url: url.map { HTTPServerSpec(url: $0).displayURL }, envNames: env.map { $0.keys.sorted() },
            headerNames: headers.map { $0.keys.sorted() },
            expose: expose, start: start ?? "boot", idleTimeout: idleTimeout, maxInstances: maxInstances ?? 1, callTimeout: callTimeout ?? 30
        )
        view.secrets = secretReferences.isEmpty ? nil : secretReferences
        view.perUser = isPerUser ? true : nil
        return view
    }
}

extension MCPServerDefinition {
    enum CodingKeys: String, CodingKey {
        case id, transport, command, args, env, cwd, url, headers, enabled, expose, start, idleTimeout, maxInstances, callTimeout, org, perUser
    }

    /// Absent fields take their defaults (`transport` from `url`, enabled, everything exposed), so
    /// hand-written files and admin requests stay short.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let url = try container.decodeIfPresent(String.self, forKey: .url)
        self.init(
            id: try container.decode(String.self, forKey: .id),
            transport: try container.decodeIfPresent(String.self, forKey: .transport),
            command: try container.decodeIfPresent(String.self, forKey: .command),
            args: try container.decodeIfPresent([String].self, forKey: .args),
            env: try container.decodeIfPresent([String: String].self, forKey: .env),
            cwd: try container.decodeIfPresent(String.self, forKey: .cwd),
            url: url,
            headers: try container.decodeIfPresent([String: String].self, forKey: .headers),
            enabled: try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? true,
            expose: try container.decodeIfPresent(Exposure.self, forKey: .expose) ?? .everything,
            start: try container.decodeIfPresent(String.self, forKey: .start),
            idleTimeout: try container.decodeIfPresent(Int.self, forKey: .idleTimeout),
            maxInstances: try container.decodeIfPresent(Int.self, forKey: .maxInstances),
            callTimeout: try container.decodeIfPresent(Int.self, forKey: .callTimeout),
            org: try container.decodeIfPresent(String.self, forKey: .org),
            perUser: try container.decodeIfPresent(Bool.self, forKey: .perUser)
        )
    }
}
