import Logging
import ServiceLifecycle
import Synchronization
import WardenMCP

/// The running instances of one registered server. Calls go to the ready instance with the fewest
/// calls in flight; a new instance starts (up to the cap) when all are busy, and on the first call
/// when none runs. Idle instances beyond the minimum are stopped. The last catalogue seen is kept
/// while no instance runs, so an idle server still lists its tools.
package final class DownstreamPool: Sendable {
    package let serverID: String
    let policy: PoolPolicy
    let makeSupervisor: @Sendable () -> DownstreamSupervisor
    let logger: Logger

    private struct Instance {
        var supervisor: DownstreamSupervisor
        var task: Task<Void, Never>
        var inFlight = 0
        var lastUsed = ContinuousClock.now
    }

    private struct State {
        var next = 0
        var instances: [Int: Instance] = [:]
        var knownCatalogue: ServerCatalogue?
        var restarts = 0
        var handler: DownstreamSupervisor.MessageHandler?
        var closed = false
    }

    private let state = Mutex(State())

    package init(serverID: String, policy: PoolPolicy, logger: Logger, makeSupervisor: @escaping @Sendable () -> DownstreamSupervisor) {
        self.serverID = serverID
        self.policy = policy
        self.logger = logger
        self.makeSupervisor = makeSupervisor
    }

    /// One instance of an existing supervisor (tests of routing; nothing is started).
    package convenience init(supervisor: DownstreamSupervisor) {
        self.init(serverID: supervisor.serverID, policy: PoolPolicy(startAtBoot: false), logger: Logger(label: "warden.gateway.pool")) { supervisor }
    }

    package func setMessageHandler(_ handler: @escaping DownstreamSupervisor.MessageHandler) {
        let supervisors = state.withLock { state -> [DownstreamSupervisor] in
            state.handler = handler
            return state.instances.values.map(\.supervisor)
        }
        for supervisor in supervisors { supervisor.setMessageHandler(handler) }
    }

    /// The server as a whole: ready when an instance is; idle (with its last catalogue) when none runs.
    package var status: DownstreamServerStatus {
        let (statuses, known, closed) = state.withLock { state in
            (state.instances.sorted { $0.key < $1.key }.map(\.value.supervisor.status), state.knownCatalogue, state.closed)
        }
        let restarts = statuses.reduce(0) { $0 + $1.restarts }
        if let ready = statuses.first(where: { $0.state == .ready }) {
            return DownstreamServerStatus(serverID: serverID, state: .ready, detail: nil, catalogue: ready.catalogue, restarts: restarts)
        }
        if let first = statuses.first {
            return DownstreamServerStatus(serverID: serverID, state: first.state, detail: first.detail, catalogue: nil, restarts: restarts)
        }
        return DownstreamServerStatus(serverID: serverID, state: closed ? .stopped : .idle, detail: nil, catalogue: known, restarts: restarts)
    }

    /// How many instances run now.
    package var instanceCount: Int { state.withLock { $0.instances.count } }

    /// Process groups of running stdio instances.
    package var processGroups: [Int32] { state.withLock { $0.instances.values.compactMap(\.supervisor.processGroup) } }

    /// Starts the boot instance and stops idle ones until shutdown; then stops every instance.
    package func run() async {
        if policy.startAtBoot { _ = spawn() }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(500))
            reapIdle(now: .now)
        }
        let tasks = state.withLock { state -> [Task<Void, Never>] in
            state.closed = true
            return state.instances.values.map(\.task)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    /// Makes sure the catalogue is known: starts an instance of a server never seen and waits for
    /// it (listings of lazily started servers), up to `timeout`.
    func warmUp(timeout: Duration) async {
        let needed = state.withLock { $0.knownCatalogue == nil && $0.instances.isEmpty && !$0.closed }
        guard needed else { return }
        if let instance = spawn() { _ = await waitUntilReady(instance, timeout: timeout) }
    }

    /// Forwards a request to the best instance, starting one when none runs or all are busy.
    package func call(_ method: String, params: JSONValue?, timeout: Duration? = nil) async throws -> JSONValue {
        let chosen = try await acquire()
        defer { release(chosen) }
        guard let supervisor = state.withLock({ $0.instances[chosen]?.supervisor }) else {
            throw DownstreamError(.unavailable, server: serverID, "the server stopped")
        }
        return try await supervisor.call(method, params: params, timeout: timeout)
    }

    /// How long a call waits for a starting instance.
    static let startTimeout = Duration.seconds(30)

    private func acquire() async throws -> Int {
        enum Choice { case use(Int), start(Int), wait(Int), unavailable(String) }
        let choice = state.withLock { state -> Choice in
            if state.closed { return .unavailable("the gateway is stopping") }
            let ready = state.instances.filter { $0.value.supervisor.status.state == .ready }
            if let best = ready.min(by: { $0.value.inFlight < $1.value.inFlight }) {
                if best.value.inFlight > 0 && state.instances.count < policy.maximumInstances {
                    // Everyone is busy: add capacity for the next calls, serve this one now.
                    state.instances[spawnLocked(&state)]?.lastUsed = .now
                }
                state.instances[best.key]?.inFlight += 1
                state.instances[best.key]?.lastUsed = .now
                return .use(best.key)
            }
            if let starting = state.instances.first(where: { $0.value.supervisor.status.state == .starting }) {
                state.instances[starting.key]?.inFlight += 1
                return .wait(starting.key)
            }
            if state.instances.count < policy.maximumInstances {
                let number = spawnLocked(&state)
                state.instances[number]?.inFlight += 1
                return .start(number)
            }
            let detail = state.instances.values.first?.supervisor.status.detail
            return .unavailable("the server is not ready\(detail.map { ": \($0)" } ?? "")")
        }
        switch choice {
        case .use(let number):
            return number
        case .start(let number), .wait(let number):
            if await waitUntilReady(number, timeout: Self.startTimeout) { return number }
            let detail = state.withLock { $0.instances[number]?.supervisor.status.detail }
            release(number)
            throw DownstreamError(.unavailable, server: serverID, "the server did not become ready\(detail.map { ": \($0)" } ?? "")")
        case .unavailable(let reason):
            throw DownstreamError(.unavailable, server: serverID, reason)
        }
    }

    private func release(_ number: Int) {
        state.withLock { state in
            state.instances[number]?.inFlight -= 1
            state.instances[number]?.lastUsed = .now
        }
    }

    private func waitUntilReady(_ number: Int, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let status = state.withLock({ $0.instances[number]?.supervisor.status }) else { return false }
            if status.state == .ready {
                state.withLock { $0.knownCatalogue = status.catalogue }
                return true
            }
            if status.state == .failed || status.state == .stopped { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @discardableResult
    private func spawn() -> Int? {
        state.withLock { state in
            guard !state.closed, state.instances.count < policy.maximumInstances else { return nil }
            return spawnLocked(&state)
        }
    }

    private func spawnLocked(_ state: inout State) -> Int {
        state.next += 1
        let supervisor = makeSupervisor()
        if let handler = state.handler { supervisor.setMessageHandler(handler) }
        let task = Task { do { try await supervisor.run() } catch {} }
        state.instances[state.next] = Instance(supervisor: supervisor, task: task)
        logger.info("MCP server instance started", metadata: ["mcp.server": "\(serverID)", "mcp.instances": "\(state.instances.count)"])
        return state.next
    }

    /// Stops instances idle for longer than the policy allows, keeping the minimum.
    func reapIdle(now: ContinuousClock.Instant) {
        guard let idleTimeout = policy.idleTimeout else { return }
        let stopped = state.withLock { state -> [Task<Void, Never>] in
            for instance in state.instances.values {
                if let catalogue = instance.supervisor.status.catalogue { state.knownCatalogue = catalogue }
            }
            var removable = state.instances.count - policy.minimumInstances
            var stopped: [Task<Void, Never>] = []
            for (number, instance) in state.instances.sorted(by: { $0.value.lastUsed < $1.value.lastUsed }) where removable > 0 {
                guard instance.inFlight == 0, now - instance.lastUsed >= idleTimeout else { continue }
                state.instances[number] = nil
                stopped.append(instance.task)
                removable -= 1
            }
            return stopped
        }
        for task in stopped { task.cancel() }
        if !stopped.isEmpty {
            logger.info("idle MCP server instances stopped", metadata: ["mcp.server": "\(serverID)", "mcp.stopped": "\(stopped.count)"])
        }
    }
}
