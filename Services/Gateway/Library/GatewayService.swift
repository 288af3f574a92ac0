import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenMCP
import WardenPolicyEngine
import WardenServiceKit

/// The gateway: the only endpoint MCP clients and operators talk to.
///
/// - `/mcp`: the MCP endpoint in front of the configured downstream servers (`MCPEndpoint`).
/// - `/readyz`: this gateway's own readiness (HTTP 200/503) and, in the body, every service's health
///   and instance count as seen over NATS.
///
/// - `/admin/v1/servers`: the server registry (`ServerAdminRoutes`).
///
/// Environment:
/// `WARDEN_MCP_SERVERS_FILE` (servers to seed the registry with, see `DownstreamRegistry`),
/// `WARDEN_MCP_ALLOWED_ORIGINS` (comma-separated browser origins allowed to call `/mcp`),
/// `WARDEN_ADMIN_TOKEN` or `WARDEN_ADMIN_TOKEN_FILE` (the platform admin credential; without it the
/// bootstrap makes an admin key, see `BootstrapService`), `WARDEN_BOOTSTRAP_ORG`,
/// `WARDEN_BOOTSTRAP_OWNER_EMAIL` and `WARDEN_BOOTSTRAP_CREDENTIAL_FILE`,
/// `WARDEN_PUBLIC_URL` (the issuer of agent tokens; `<url>/mcp` is their audience) and
/// `WARDEN_AUTH_REQUIRED` (refuse `/mcp` requests without a valid agent token; default true; false
/// only for local experiments), `WARDEN_MTLS_TRUSTED_PROXIES` and `WARDEN_MTLS_TRUST_DOMAIN`
/// (agents identified by client certificates a trusted proxy verified; off unless set),
/// `WARDEN_APPROVAL_WAIT_SECONDS` (how long a call that needs approval waits for it before the
/// client is told it is pending; default 60), `WARDEN_APPROVAL_NOTICE_ATTEMPTS` (deliveries of a
/// Slack or webhook notice before it is dead-lettered; default 6) and
/// `WARDEN_APPROVAL_LOCAL_ENDPOINTS` (allow Slack, webhook and audit sink URLs on this machine; trials only),
/// `WARDEN_AUDIT_SPOOL_EVENTS` (audit events held while the audit stream does not take them, before
/// requests are refused; default 20,000).
package struct GatewayService: WardenServiceDefinition {
    package static let service = WardenServiceName.gateway
    package static let migrations: [Migration] = [
        PlatformMigrations.instances, GatewayMigrations.servers, GatewayMigrations.credentialsInVault, GatewayMigrations.toolPins,
        GatewayMigrations.approvalNotices, GatewayMigrations.auditSinks,
    ]

    package private(set) var services: [any Service]
    package let readiness: OperationsRoutes.Readiness?
    /// Sets the gauges of this replica's state (servers, streams, audit spool) when scraped.
    let recordGauges: @Sendable () -> Void
    let backlog: ConsumerBacklog
    let monitor: MeshHealthMonitor
    let endpoint: MCPEndpoint
    let admin: ServerAdminRoutes
    let tokens: TokenAdminRoutes
    let secrets: SecretAdminRoutes
    let connections: OAuthConnectionRoutes
    let policies: PolicyAdminRoutes
    let tools: ToolAdminRoutes
    let audit: AuditAdminRoutes
    let approvers: ApproverRoutes
    let slack: SlackActionRoutes
    let approvalChannels: ApprovalChannelRoutes
    let auditSettings: AuditSettingsRoutes
    let oauth: OAuthRoutes
    let authorizationServer: AuthorizationServerRoutes
    let authorizationAdmin: AuthorizationAdminRoutes
    let principals: PrincipalAdminRoutes
    let authenticator: GatewayAuthenticator
    let adminAudit: AdminAuditMiddleware

    package init(runtime: ServiceRuntime) async throws {
        let monitor = MeshHealthMonitor(bus: runtime.bus, logger: runtime.logger)
        self.monitor = monitor
        let environment = ProcessInfo.processInfo.environment
        var seed: [MCPServerDefinition] = []
        if let file = environment["WARDEN_MCP_SERVERS_FILE"], !file.isEmpty {
            seed = try DownstreamRegistry.load(file: file)
        }
        let startup = runtime.startup
        let store = PostgresServerRegistryStore(database: runtime.database, logger: runtime.logger)
        let resolver = SecretResolver(
            client: runtime.client, bus: runtime.bus, lifetime: try SecretResolver.lifetime(environment), logger: runtime.logger)
        let registry = DownstreamRegistry(
            store: store,
            bus: runtime.bus,
            seed: seed,
            startup: { try await startup.wait() },
            resolver: resolver,
            migration: CredentialMigration(store: store, client: runtime.client, logger: runtime.logger),
            logger: runtime.logger
        )
        let origins = Set(
            (environment["WARDEN_MCP_ALLOWED_ORIGINS"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            })
        let calls = InFlightCalls()
        let streams = SessionStreams()
        let relay = ServerRequestRelay()
        let subscriptions = ResourceSubscriptions()
        let broadcasts = GatewayBroadcasts(
            bus: runtime.bus, calls: calls, streams: streams, relay: relay, subscriptions: subscriptions, logger: runtime.logger)
        let publicURL =
            environment["WARDEN_PUBLIC_URL"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "http://\(runtime.configuration.httpHost):\(runtime.configuration.httpPort)"
        let authRequired: Bool
        switch environment["WARDEN_AUTH_REQUIRED"]?.lowercased() ?? "true" {
        case "true", "1", "yes", "": authRequired = true
        case "false", "0", "no": authRequired = false
        default: throw ConfigurationError(key: "auth.required", problem: "must be true or false")
        }
        let revocations = RevocationList(bus: runtime.bus, logger: runtime.logger) { revocation in
            // A revoked agent's open streams close at once, on every replica.
            if revocation.kind == .subject { streams.endAgent(revocation.id) }
        }
        let certificates: ClientCertificateTrust?
        do throws(ConfigurationProblem) {
            certificates = try ClientCertificateTrust.configured(
                proxies: environment["WARDEN_MTLS_TRUSTED_PROXIES"], trustDomain: environment["WARDEN_MTLS_TRUST_DOMAIN"])
        } catch {
            throw ConfigurationError(key: "mtls", problem: error.description)
        }
        let authenticator = GatewayAuthenticator(
            publicURL: publicURL, required: authRequired, client: runtime.client, revocations: revocations, certificates: certificates,
            logger: runtime.logger
        )
        self.authenticator = authenticator
        ServerMessageRouter(
            registry: registry, calls: calls, streams: streams, relay: relay, subscriptions: subscriptions,
            sendToSession: { message, session in broadcasts.send(message, to: session) }, logger: runtime.logger
        ).install()
        let policy = PolicyDecisions(
            client: runtime.client, bus: runtime.bus, timeout: try PolicyDecisions.timeout(environment), logger: runtime.logger)
        // A changed policy changes what its org's sessions may list: they are told on their streams.
        policy.onChange { change in
            for listing in ["tools", "prompts", "resources"] {
                streams.broadcast(.notification(method: "notifications/\(listing)/list_changed", params: nil), org: change.scope.org)
            }
        }
        let continuity = AuditContinuitySettings(database: runtime.database, startup: runtime.startup, logger: runtime.logger)
        let auditor = CallAuditor(
            bus: runtime.bus, capacity: try CallAuditor.capacity(environment), health: runtime.health,
            continues: { continuity.continues(org: $0) }, anyContinues: { continuity.anyContinues }, logger: runtime.logger)
        let pins = ToolPins(store: ToolPinStore(database: runtime.database, logger: runtime.logger), bus: runtime.bus, logger: runtime.logger)
        // Approving a tool (or holding a changed one) changes what the org's sessions may list.
        pins.onChange { org in streams.broadcast(.notification(method: "notifications/tools/list_changed", params: nil), org: org) }
        let waiters = ApprovalWaiters()
        let feeds = ApproverFeeds()
        var approvals = ApprovalStage(client: runtime.client, waiters: waiters)
        approvals.wait = .seconds(
            try ServiceConfiguration.number(
                environment, "WARDEN_APPROVAL_WAIT_SECONDS", key: "approval.wait.seconds", range: 1...3600, unit: "seconds",
                default: Int(approvals.wait.components.seconds)))
        let host = runtime.configuration.httpHost
        let undecided = try Self.benchmarkSwitch(
            "WARDEN_BENCHMARK_UNDECIDED", environment, host: host, publicURL: publicURL,
            says: "MCP requests are NOT decided by policy nor checked against tool pins",
            logger: runtime.logger)
        let unaudited = try Self.benchmarkSwitch(
            "WARDEN_BENCHMARK_UNAUDITED", environment, host: host, publicURL: publicURL, says: "MCP requests are NOT audited", logger: runtime.logger)
        self.endpoint = MCPEndpoint(
            registry: registry,
            calls: calls,
            subscriptions: subscriptions,
            sessions: NATSSessionStore(connection: runtime.bus),
            events: NATSSessionEventLog(connection: runtime.bus, logger: runtime.logger),
            streams: streams,
            broadcasts: broadcasts,
            authenticator: authenticator,
            // Benchmarks only: the same gateway deciding nothing, to show what policy and pinning cost.
            policy: authRequired && !undecided ? policy : nil,
            pins: authRequired && !undecided ? pins : nil,
            limiter: RateLimiter(connection: runtime.bus, logger: runtime.logger),
            // Benchmarks only: the same gateway without its call records, to show what auditing costs.
            auditor: unaudited ? nil : auditor,
            approvals: approvals,
            trustedProxies: try Self.trustedProxies(environment["WARDEN_TRUSTED_PROXIES"]),
            allowedOrigins: origins,
            publicURL: publicURL,
            instanceID: runtime.configuration.instanceID,
            isGatewayRunning: { monitor.isAlive(.gateway, instance: $0) },
            logger: runtime.logger
        )
        var adminToken = environment["WARDEN_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if let file = environment["WARDEN_ADMIN_TOKEN_FILE"], !file.isEmpty {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError(key: "admin.token.file", problem: "cannot read \(file)")
            }
            adminToken = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let adminToken, adminToken.count < 24 {
            throw ConfigurationError(key: "admin.token", problem: "is too short: use at least 24 random characters")
        }
        let access = AdminAccess(
            credential: adminToken.map(AdminCredential.init(token:)), authenticator: authenticator,
            adminKeys: AdminKeyVerifier(client: runtime.client, revocations: revocations)
        )
        self.adminAudit = AdminAuditMiddleware(auditor: auditor)
        let bootstrap = BootstrapService(
            settings: BootstrapService.Settings(environment: environment, operatorHasCredential: adminToken != nil), client: runtime.client,
            logger: runtime.logger
        )
        self.services = [
            monitor, broadcasts, resolver, registry, revocations, bootstrap, policy, pins,
            auditor, AuditStreamService(bus: runtime.bus, logger: runtime.logger), continuity,
            ApprovalChanges(bus: runtime.bus, waiters: waiters, feeds: feeds, logger: runtime.logger),
        ]
        self.admin = ServerAdminRoutes(registry: registry, store: store, access: access, logger: runtime.logger)
        self.principals = PrincipalAdminRoutes(
            client: runtime.client, revocations: revocations, access: access, authenticator: authenticator, logger: runtime.logger)
        self.oauth = OAuthRoutes(authenticator: authenticator, client: runtime.client, revocations: revocations, logger: runtime.logger)
        self.authorizationServer = AuthorizationServerRoutes(
            authenticator: authenticator, client: runtime.client,
            documents: ClientMetadataDocuments(allowedOrigins: environment["WARDEN_OAUTH_METADATA_ALLOWED_ORIGINS"], logger: runtime.logger),
            revocations: revocations, trustedProxies: try Self.trustedProxies(environment["WARDEN_TRUSTED_PROXIES"]), logger: runtime.logger)
        self.authorizationAdmin = AuthorizationAdminRoutes(client: runtime.client, revocations: revocations, access: access, logger: runtime.logger)
        self.tokens = TokenAdminRoutes(
            authenticator: authenticator, client: runtime.client, revocations: revocations, access: access, logger: runtime.logger)
        self.secrets = SecretAdminRoutes(client: runtime.client, access: access, logger: runtime.logger)
        self.policies = PolicyAdminRoutes(
            client: runtime.client, access: access,
            tools: { org in registry.catalogue(for: org).tools.compactMap { $0["name"]?.stringValue } }, logger: runtime.logger)
        self.tools = ToolAdminRoutes(pins: pins, access: access, logger: runtime.logger)
        self.audit = AuditAdminRoutes(client: runtime.client, access: access, logger: runtime.logger)
        let approvalChannels = ApprovalChannelStore(client: runtime.client)
        self.slack = SlackActionRoutes(channels: approvalChannels, client: runtime.client, database: runtime.database, logger: runtime.logger)
        let localEndpoints: Bool
        switch environment["WARDEN_APPROVAL_LOCAL_ENDPOINTS"]?.lowercased() ?? "false" {
        case "true", "1", "yes": localEndpoints = true
        case "false", "0", "no", "": localEndpoints = false
        default: throw ConfigurationError(key: "approval.local.endpoints", problem: "must be true or false")
        }
        self.approvalChannels = ApprovalChannelRoutes(
            channels: approvalChannels, access: access, database: runtime.database, allowLocal: localEndpoints, logger: runtime.logger)
        let sinks = OrgSecretDocument<AuditSinks>(
            client: runtime.client, path: AuditSinks.secretPath, description: "audit webhook sinks: set with warden audit sinks")
        let cursors = AuditSinkCursors(database: runtime.database, logger: runtime.logger)
        self.auditSettings = AuditSettingsRoutes(
            sinks: sinks, cursors: cursors, continuity: continuity, client: runtime.client, access: access, allowLocal: localEndpoints,
            logger: runtime.logger)
        self.services.append(
            AuditSinkRelay(
                cursors: cursors, sinks: sinks, client: runtime.client, allowLocal: localEndpoints, instance: runtime.configuration.instanceID,
                startup: runtime.startup, logger: runtime.logger))
        let noticeAttempts = try ServiceConfiguration.number(
            environment, "WARDEN_APPROVAL_NOTICE_ATTEMPTS", key: "approval.notice.attempts", range: 1...20, unit: "", default: 6)
        let notifier = ApprovalNotifier(
            bus: runtime.bus, channels: approvalChannels, database: runtime.database, attempts: noticeAttempts, allowLocal: localEndpoints,
            logger: runtime.logger)
        self.services.append(notifier)
        self.backlog = ConsumerBacklog(bus: runtime.bus, consumers: [AuditPublisher.consumerSpec, notifier.consumerSpec], logger: runtime.logger)
        self.approvers = ApproverRoutes(
            access: ApproverAccess(authenticator: authenticator, client: runtime.client), client: runtime.client, feeds: feeds,
            logger: runtime.logger)
        self.connections = OAuthConnectionRoutes(client: runtime.client, access: access, publicURL: publicURL, logger: runtime.logger)
        let reported = Mutex<Set<String>>([])
        self.recordGauges = {
            Gauge(label: "warden_mcp_standing_streams").record(streams.count)
            Gauge(label: "warden_audit_spool_events").record(auditor.held)
            Gauge(label: "warden_audit_spool_capacity").record(auditor.capacity)
            let servers = registry.servers
            for (server, pool) in servers {
                Gauge(label: "warden_mcp_server_up", dimensions: [("server", server)]).record(pool.status.state == .ready ? 1 : 0)
                Gauge(label: "warden_mcp_server_instances", dimensions: [("server", server)]).record(pool.instanceCount)
            }
            // A server removed from the registry leaves the exposition (an alert on it would never clear).
            let removed = reported.withLock { reported in
                defer { reported = Set(servers.keys) }
                return reported.subtracting(servers.keys)
            }
            for server in removed {
                Gauge(label: "warden_mcp_server_up", dimensions: [("server", server)]).destroy()
                Gauge(label: "warden_mcp_server_instances", dimensions: [("server", server)]).destroy()
            }
        }
        let health = runtime.health
        self.readiness = {
            var status = GatewayService.meshStatus(own: health.snapshot, services: monitor.summaries())
            status.mcpServers = registry.health
            let body = (try? EnvelopeCoding.encoder().encode(status)) ?? Data()
            return (status.gateway.ready, body)
        }
    }

    /// A benchmark-only switch that leaves a stage out (`WARDEN_BENCHMARK_UNAUDITED=true`: no call
    /// records; `WARDEN_BENCHMARK_UNDECIDED=true`: no policy decisions nor tool pins), for the
    /// side-by-side benchmarks that show what the stage costs. Never for a deployment: a gateway
    /// refuses to start with one unless it listens on a loopback address and its public URL names
    /// one (a deployment behind a proxy on the same machine names its outside address there), and
    /// says so loudly.
    static func benchmarkSwitch(_ name: String, _ environment: [String: String], host: String, publicURL: String, says: String, logger: Logger)
        throws(ConfigurationError) -> Bool
    {
        guard environment[name] == "true" else { return false }
        let publicHost = URLComponents(string: publicURL)?.host ?? ""
        guard isLoopback(host), isLoopback(publicHost) else {
            throw ConfigurationError(
                key: name,
                problem:
                    "is for benchmarks only, on a gateway listening on and named by a loopback address (WARDEN_HTTP_HOST is \(host), the public URL's host \(publicHost))"
            )
        }
        logger.critical("\(name)=true: \(says) (benchmarks only)")
        return true
    }

    /// `localhost`, or an address in 127.0.0.0/8 or `::1` (written as an address, not a name).
    static func isLoopback(_ host: String) -> Bool {
        let address = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if address == "localhost" { return true }
        guard let bytes = IPAddressRange.bytes(address) else { return false }
        return IPAddressRange("127.0.0.0/8")!.contains(bytes) || IPAddressRange("::1")!.contains(bytes)
    }

    package func collectMetrics() async {
        recordGauges()
        await backlog.record()
    }

    /// The approvers' WebSocket channel (`ApproverRoutes.webSocketRoutes`).
    package var webSocketRoutes: Router<BasicWebSocketRequestContext>? { approvers.webSocketRoutes() }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.middlewares.add(adminAudit)
        endpoint.addRoutes(to: router)
        admin.addRoutes(to: router)
        tokens.addRoutes(to: router)
        secrets.addRoutes(to: router)
        connections.addRoutes(to: router)
        policies.addRoutes(to: router)
        tools.addRoutes(to: router)
        audit.addRoutes(to: router)
        approvers.addRoutes(to: router)
        slack.addRoutes(to: router)
        approvalChannels.addRoutes(to: router)
        auditSettings.addRoutes(to: router)
        oauth.addRoutes(to: router)
        authorizationServer.addRoutes(to: router)
        authorizationAdmin.addRoutes(to: router)
        principals.addRoutes(to: router)
    }

    /// `ready` when this gateway and every service are up; `degraded` when this gateway can serve but
    /// some service is not up; `not_ready` when this gateway itself cannot serve.
    package static func meshStatus(own: InstanceHealth, services: [ServiceHealthSummary]) -> MeshStatus {
        let status: String
        if !own.ready {
            status = "not_ready"
        } else if services.allSatisfy({ $0.status == .up }) {
            status = "ready"
        } else {
            status = "degraded"
        }
        return MeshStatus(status: status, gateway: own, services: services)
    }

    /// `WARDEN_TRUSTED_PROXIES`: reverse proxies (addresses or CIDR ranges, comma-separated) whose
    /// `X-Forwarded-For` names the client's address for policy conditions.
    static func trustedProxies(_ text: String?) throws(ConfigurationError) -> [IPAddressRange] {
        var ranges: [IPAddressRange] = []
        for entry in (text ?? "").split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            guard let range = IPAddressRange(entry) else {
                throw ConfigurationError(key: "trusted.proxies", problem: "'\(entry.prefix(64))' is not an IP address or CIDR range")
            }
            ranges.append(range)
        }
        return ranges
    }
}
