import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenMCP
import WardenNATS

/// The downstream servers this gateway fronts, kept in step with the server registry.
///
/// Definitions live in the gateway's schema (`ServerRegistryStore`). Every replica reads them at
/// start, again whenever a change is announced over NATS, and every `refreshInterval` in case an
/// announcement was missed; it then starts, stops or restarts its own supervisors to match. A
/// server whose exposure alone changed keeps running. `WARDEN_MCP_SERVERS_FILE` seeds the registry
/// at start (servers it names are added when absent; the registry wins afterwards).
package final class DownstreamRegistry: Service, Sendable {
    package static let changedSubject = "warden.gateway.broadcast.registry"

    struct Entry {
        var definition: MCPServerDefinition
        /// The server's instances; for a per-user server, a pool that never gets a call (its
        /// instances are in `userPools`).
        var pool: DownstreamPool
        /// Shared by the pool's instances: what one was given, all are scrubbed of.
        var credentials: ServerCredentials
        /// A per-user server's instances, by user, each given that user's credentials, and when a
        /// request last went to them (idle ones are dropped: `dropIdleUserPools`).
        var userPools: [String: UserPool] = [:]
        /// The credentials its settings refer to (`secret://…`, `oauth://…`), for the record of each call.
        let credentialReferences: [String]

        init(definition: MCPServerDefinition, pool: DownstreamPool, credentials: ServerCredentials) {
            self.definition = definition
            self.pool = pool
            self.credentials = credentials
            self.credentialReferences = definition.secretReferences
        }

        /// What listings show of the server to `user`: its own instances' status, or the idle
        /// pool's (no catalogue) until they have run. Never another user's: what a server lists
        /// (resources especially) may be that user's own data.
        func status(for user: String?) -> DownstreamServerStatus {
            guard definition.isPerUser else { return pool.status }
            return user.flatMap { userPools[$0]?.pool.status } ?? pool.status
        }
    }

    struct UserPool {
        var pool: DownstreamPool
        var credentials: ServerCredentials
        var lastRouted: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// Pools to run, picked up by `run`'s task group.
    private let launches: AsyncStream<DownstreamPool>
    private let launch: AsyncStream<DownstreamPool>.Continuation
    private let messageHandler = Mutex<DownstreamSupervisor.MessageHandler?>(nil)
    let store: (any ServerRegistryStore)?
    let bus: NATSConnection?
    let seed: [MCPServerDefinition]
    let refreshInterval: Duration
    let startup: (@Sendable () async throws -> Void)?
    /// Resolves the secrets servers' settings refer to (nil: no vault; literal values only).
    let resolver: SecretResolver?
    /// Moves plaintext values of servers registered before the vault held them into the vault.
    let migration: CredentialMigration?
    let makeSupervisor: @Sendable (MCPServerDefinition, ServerCredentials) -> DownstreamSupervisor
    /// Stdio servers whose environment refers to a secret that changed, to restart.
    private let recycles: AsyncStream<SecretChanged>
    private let recycle: AsyncStream<SecretChanged>.Continuation
    /// How long a listing waits for lazily started servers it has never seen.
    static let warmUpTimeout = Duration.seconds(10)
    let logger: Logger

    package init(
        store: (any ServerRegistryStore)?,
        bus: NATSConnection?,
        seed: [MCPServerDefinition] = [],
        refreshInterval: Duration = .seconds(30),
        startup: (@Sendable () async throws -> Void)? = nil,
        resolver: SecretResolver? = nil,
        migration: CredentialMigration? = nil,
        logger: Logger,
        makeSupervisor: (@Sendable (MCPServerDefinition, ServerCredentials) -> DownstreamSupervisor)? = nil
    ) {
        self.store = store
        self.bus = bus
        self.seed = seed
        self.refreshInterval = refreshInterval
        self.startup = startup
        self.resolver = resolver
        self.migration = migration
        self.logger = logger
        self.makeSupervisor = makeSupervisor ?? { Self.supervisor(for: $0, credentials: $1, logger: logger) }
        (launches, launch) = AsyncStream.makeStream(of: DownstreamPool.self)
        (recycles, recycle) = AsyncStream.makeStream(of: SecretChanged.self)
        resolver?.onChange { [recycle] change in recycle.yield(change) }
    }

    /// Fixed servers, each one instance of its supervisor started on first use (unit tests): run
    /// the registry for them to start.
    package convenience init(supervisors: [DownstreamSupervisor]) {
        self.init(store: nil, bus: nil, logger: Logger(label: "warden.gateway.registry"))
        let pools = supervisors.map(DownstreamPool.init(supervisor:))
        entries.withLock { entries in
            for pool in pools {
                entries[pool.serverID] = Entry(
                    definition: MCPServerDefinition(id: pool.serverID, command: "-"), pool: pool,
                    credentials: ServerCredentials(serverID: pool.serverID))
            }
        }
        for pool in pools { launch.yield(pool) }
    }

    package var servers: [String: DownstreamPool] { entries.withLock { $0.mapValues(\.pool) } }

    /// One server's pool: what every call looks up (no copy of the whole table).
    package func server(_ id: String) -> DownstreamPool? { entries.withLock { $0[id]?.pool } }

    package var definitions: [MCPServerDefinition] { entries.withLock { $0.values.map(\.definition).sorted { $0.id < $1.id } } }

    /// The merged catalogue an agent of `org` (acting for `user`) sees: shared servers and its org's own.
    package func catalogue(for org: String?, user: String? = nil) -> MergedCatalogue {
        let current = entries.withLock { $0.values.filter { $0.definition.isVisible(to: org) } }
        return MergedCatalogue(
            servers: current.map { $0.status(for: user) },
            exposures: Dictionary(uniqueKeysWithValues: current.map { ($0.definition.id, $0.definition.expose) })
        )
    }

    /// Where a request routed to a server goes.
    struct Route {
        var pool: DownstreamPool
        var exposure: Exposure?
        /// A per-user server's credentials for the caller's user, checked before the call.
        var userCredentials: ServerCredentials?
        /// The credentials the server is given (references, never values).
        var credentialReferences: [String] = []
    }

    /// What a request routed to `id` needs, in one look: its pool and its exposure lists, if an agent
    /// of `org` may use it. A per-user server answers with the instances of `user` (made on first
    /// use); without a user it is unusable (`.failure`).
    func route(to id: String, visibleTo org: String?, user: String? = nil) -> Result<Route, RouteRefusal>? {
        let (found, launched) = entries.withLock { entries -> (Result<Route, RouteRefusal>?, DownstreamPool?) in
            guard let entry = entries[id], entry.definition.isVisible(to: org) else { return (nil, nil) }
            guard entry.definition.isPerUser else {
                return (.success(Route(pool: entry.pool, exposure: entry.definition.expose, credentialReferences: entry.credentialReferences)), nil)
            }
            guard let user else { return (.failure(.noUser(server: id)), nil) }
            let now = ContinuousClock.now
            if let own = entry.userPools[user] {
                entries[id]?.userPools[user]?.lastRouted = now
                return (
                    .success(
                        Route(
                            pool: own.pool, exposure: entry.definition.expose, userCredentials: own.credentials,
                            credentialReferences: entry.credentialReferences)), nil
                )
            }
            let made = makePool(entry.definition, user: user)
            entries[id]?.userPools[user] = UserPool(pool: made.pool, credentials: made.credentials, lastRouted: now)
            return (
                .success(
                    Route(
                        pool: made.pool, exposure: entry.definition.expose, userCredentials: made.credentials,
                        credentialReferences: entry.credentialReferences)), made.pool
            )
        }
        if let launched { launch.yield(launched) }
        return found
    }

    /// Why a request cannot go to a server it names.
    enum RouteRefusal: Error, Equatable {
        /// A per-user server, and the agent acts for no user.
        case noUser(server: String)
    }

    /// A new pool of `definition`'s instances (for `user`, of a per-user server), not yet running.
    private func makePool(_ definition: MCPServerDefinition, user: String? = nil) -> (pool: DownstreamPool, credentials: ServerCredentials) {
        let make = makeSupervisor
        let credentials = ServerCredentials(
            serverID: definition.id, org: definition.org, user: user, environment: definition.env ?? [:], headers: definition.headers ?? [:],
            url: definition.url, resolver: resolver)
        var logger = logger
        if let user { logger[metadataKey: "mcp.user"] = "\(user)" }
        let pool = DownstreamPool(
            serverID: definition.id, policy: definition.poolPolicy, traceInMeta: definition.transport != "streamable-http", logger: logger
        ) { make(definition, credentials) }
        if let handler = messageHandler.withLock({ $0 }) { pool.setMessageHandler(user == nil ? handler : Self.userScoped(handler)) }
        return (pool, credentials)
    }

    /// What a user's instance may send on its own: progress, which reaches the call it belongs to
    /// by its token. Everything else is routed by server alone (to the sole call in flight, to
    /// every session subscribed), which could reach another user: notifications are dropped, and
    /// the server's own requests (sampling, elicitation, roots) refused.
    static func userScoped(_ handler: @escaping DownstreamSupervisor.MessageHandler) -> DownstreamSupervisor.MessageHandler {
        { server, message, transport in
            switch message {
            case .notification("notifications/progress", _): await handler(server, message, transport)
            case .request(let id, let method, _):
                try? await transport.send(.error(id: id, .notRelayed("\(method) is not relayed from a per-user server's instance")))
            default: return
            }
        }
    }

    /// Drops the pools of users who made no request for `idle` and have no instance running (a
    /// user who never stored the credential leaves a pool behind on every attempt).
    func dropIdleUserPools(idle: Duration = .seconds(60)) {
        let now = ContinuousClock.now
        let dropped = entries.withLock { entries -> [DownstreamPool] in
            var dropped: [DownstreamPool] = []
            for (id, entry) in entries where entry.definition.isPerUser {
                for (user, own) in entry.userPools where now - own.lastRouted > idle && own.pool.instanceCount == 0 {
                    dropped.append(own.pool)
                    entries[id]?.userPools[user] = nil
                }
            }
            return dropped
        }
        for pool in dropped { pool.close() }
    }

    /// Starts lazily started servers whose catalogue was never seen, so that a listing shows them; a
    /// per-user server whose catalogue no user's instance has shown yet starts for `user`, when that
    /// user has its credentials.
    func warmUp(org: String? = nil, user: String? = nil) async {
        let (pools, perUser) = entries.withLock { entries -> ([DownstreamPool], [String]) in
            let visible = entries.values.filter { $0.definition.isVisible(to: org) }
            let unseen = visible.filter { $0.definition.isPerUser && $0.status(for: user).catalogue == nil }
            return (visible.filter { !$0.definition.isPerUser }.map(\.pool), unseen.map(\.definition.id))
        }
        await withTaskGroup(of: Void.self) { group in
            for pool in pools { group.addTask { await pool.warmUp(timeout: Self.warmUpTimeout) } }
            for id in perUser {
                guard case .success(let route)? = route(to: id, visibleTo: org, user: user) else { continue }
                group.addTask {
                    guard (try? await route.userCredentials?.check()) != nil else { return }
                    await route.pool.warmUp(timeout: Self.warmUpTimeout)
                }
            }
        }
    }

    /// Every server's state, for `/readyz` and `warden status`.
    package var health: [MCPServerHealth] {
        servers.values.map(\.status).sorted { $0.serverID < $1.serverID }.map { status in
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

    static func supervisor(for definition: MCPServerDefinition, credentials: ServerCredentials, logger: Logger) -> DownstreamSupervisor {
        if definition.transport == "stdio" {
            let spec = StdioLaunchSpec(
                command: definition.command ?? "", arguments: definition.args ?? [], environment: definition.env ?? [:],
                workingDirectory: definition.cwd)
            return DownstreamSupervisor(
                serverID: definition.id, spec: spec, credentials: credentials, callTimeout: definition.callDeadline, logger: logger)
        }
        let spec = HTTPServerSpec(
            url: definition.url ?? "", transport: definition.transport == "sse" ? .sse : .streamableHTTP, headers: definition.headers ?? [:])
        return DownstreamSupervisor(
            serverID: definition.id, http: spec, credentials: credentials, callTimeout: definition.callDeadline, logger: logger)
    }

    // MARK: Keeping in step

    /// Starts, stops and restarts supervisors so that exactly the enabled definitions run.
    func apply(_ definitions: [MCPServerDefinition]) async {
        let wanted = Dictionary(uniqueKeysWithValues: definitions.filter(\.enabled).map { ($0.id, $0) })
        let (stopped, started) = entries.withLock { entries -> ([Entry], [(id: String, pool: DownstreamPool)]) in
            var stopped: [Entry] = []
            var started: [(id: String, pool: DownstreamPool)] = []
            for (id, entry) in entries {
                guard let definition = wanted[id] else {
                    stopped.append(entries.removeValue(forKey: id)!)
                    continue
                }
                if definition.sameConnection(as: entry.definition) {
                    entries[id]?.definition = definition
                } else {
                    stopped.append(entries.removeValue(forKey: id)!)
                }
            }
            for (id, definition) in wanted where entries[id] == nil {
                let (pool, credentials) = makePool(definition)
                entries[id] = Entry(definition: definition, pool: pool, credentials: credentials)
                started.append((id, pool))
            }
            return (stopped, started)
        }
        // Outside the lock: new pools go to `run`'s task group; removed ones stop, and are waited for.
        for (_, pool) in started { launch.yield(pool) }
        let stoppedPools = stopped.flatMap { [$0.pool] + $0.userPools.values.map(\.pool) }
        for pool in stoppedPools { pool.close() }
        for pool in stoppedPools { await pool.finished.wait() }
        if !stopped.isEmpty || !started.isEmpty {
            logger.info(
                "MCP servers updated",
                metadata: ["mcp.started": "\(started.map(\.id).sorted())", "mcp.stopped": "\(stopped.map(\.definition.id).sorted())"])
        }
    }

    /// Reads the registry and applies it; false when it could not be read.
    @discardableResult
    func refresh() async -> Bool {
        guard let store else { return true }
        do {
            await apply(try await store.all())
            return true
        } catch {
            logger.warning("cannot read the server registry; keeping the servers that run", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Tells every replica (this one included) to re-read the registry.
    package func announceChange() {
        try? bus?.publish(Self.changedSubject, payload: Data())
    }

    /// Keeps the running servers in step with the registry until graceful shutdown; every pool runs
    /// as a child task, and the run ends once all of them (and their processes) have stopped.
    package func run() async throws {
        try await startup?()
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.keepInStep()
                self.launch.finish()
            }
            for await pool in launches {
                group.addTask { await pool.run() }
            }
        }
    }

    /// Seeds the registry, then applies it at start, on every announced change and every
    /// `refreshInterval`, until graceful shutdown.
    private func keepInStep() async {
        if let store {
            for definition in seed {
                do { try await store.insertIfAbsent(definition) } catch {
                    logger.warning("cannot seed a server", metadata: ["mcp.server": "\(definition.id)", "error": "\(error)"])
                }
            }
        } else if !seed.isEmpty {
            await apply(seed)
        }
        await migration?.run(announce: announceChange)
        let changes = try? bus?.subscribe(Self.changedSubject, queue: nil)
        await refresh()
        await withTaskGroup(of: Void.self) { group in
            if let changes {
                group.addTask {
                    for await _ in changes { await self.refresh() }
                }
            }
            group.addTask {
                for await change in self.recycles { await self.restartServers(using: change) }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.refreshInterval)
                    if !Task.isCancelled {
                        await self.migration?.run(announce: self.announceChange)
                        await self.refresh()
                        self.dropIdleUserPools()
                    }
                }
            }
            try? await gracefulShutdown()
            recycle.finish()
            group.cancelAll()
        }
        changes?.unsubscribe()
    }

    /// Restarts the stdio servers whose environment refers to a secret that changed: a new pool
    /// takes new calls at once, with the new value; the old one finishes the calls it has.
    func restartServers(using change: SecretChanged) async {
        // A user's instances of a per-user server stop when a secret of that user it uses changes
        // (or is deleted): the next call starts new ones, or says what is missing.
        let userPools = entries.withLock { entries -> [DownstreamPool] in
            var closing: [DownstreamPool] = []
            for (id, entry) in entries where entry.definition.isPerUser {
                for (user, own) in entry.userPools where own.credentials.uses(change, environmentOnly: false) {
                    closing.append(own.pool)
                    entries[id]?.userPools[user] = nil
                }
            }
            return closing
        }
        // Closed pools finish (their calls first) as children of `run`: nothing waits for them here,
        // so the next change is not held up.
        if !userPools.isEmpty {
            logger.info("a user's secret changed; stopping that user's instances that use it", metadata: ["mcp.instances": "\(userPools.count)"])
            for pool in userPools { pool.close() }
        }
        // Shared stdio servers using it: replaced in place, under the lock, with the definition
        // that is current then (a refresh running meanwhile is neither undone nor repeated).
        let (replaced, started) = entries.withLock { entries -> ([Entry], [DownstreamPool]) in
            var replaced: [Entry] = []
            var started: [DownstreamPool] = []
            for (id, entry) in entries where !entry.definition.isPerUser && entry.definition.transport == "stdio" && entry.credentials.uses(change) {
                let (pool, credentials) = makePool(entry.definition)
                entries[id] = Entry(definition: entry.definition, pool: pool, credentials: credentials)
                replaced.append(entry)
                started.append(pool)
            }
            return (replaced, started)
        }
        guard !replaced.isEmpty else { return }
        logger.info(
            "a secret changed; restarting the stdio servers that use it", metadata: ["mcp.servers": "\(replaced.map(\.definition.id).sorted())"])
        for pool in started { launch.yield(pool) }
        for entry in replaced { entry.pool.close() }
    }

    /// Where what servers say on their own goes (every pool, present and future).
    package func setMessageHandler(_ handler: @escaping DownstreamSupervisor.MessageHandler) {
        messageHandler.withLock { $0 = handler }
        for pool in servers.values { pool.setMessageHandler(handler) }
        let userPools = entries.withLock { $0.values.flatMap { $0.userPools.values.map(\.pool) } }
        for pool in userPools { pool.setMessageHandler(Self.userScoped(handler)) }
    }

    /// The org a server belongs to (nil: shared).
    func org(of server: String) -> String? { entries.withLock { $0[server]?.definition.org } }

    // MARK: The seed file

    package struct File: Codable, Sendable {
        package var servers: [MCPServerDefinition]
    }

    /// Reads a servers file: `{"servers": [{"id": "time", "command": "uvx", "args": ["mcp-server-time"]},
    /// {"id": "docs", "url": "https://docs.example/mcp", "headers": {"Authorization": "…"}}]}`.
    /// Errors name the problem (bad id, duplicates, missing command or url, bad JSON).
    package static func load(file path: String) throws -> [MCPServerDefinition] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw RegistryError(.invalid, "cannot read \(path)")
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw RegistryError(.invalid, "\(path) is not a valid servers file: \(error)")
        }
        var seen = Set<String>()
        for server in file.servers {
            if let problem = server.problem { throw RegistryError(.invalid, "\(path): \(problem)") }
            guard seen.insert(server.id).inserted else { throw RegistryError(.invalid, "server id '\(server.id)' appears twice in \(path)") }
        }
        return file.servers
    }
}
