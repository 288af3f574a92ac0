import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import WardenMCP
import WardenServiceKit

/// The running instances of one registered server, driven by `PoolStateMachine`: calls go to the
/// ready instance with the fewest calls in flight; another starts (up to the cap) when all are busy,
/// and on the first call when none runs; idle instances beyond the minimum stop. Callers waiting for
/// an instance are resumed by its supervisor's state changes, never by polling. The last catalogue
/// seen is kept while no instance runs, so an idle server still lists its tools.
///
/// The machine decides under the lock; what it asks for (start or stop an instance, resume or fail
/// a caller) is done after the lock is released. Instances run as child tasks of `run`.
package final class DownstreamPool: Sendable {
    package let serverID: String
    let policy: PoolPolicy
    let makeSupervisor: @Sendable () -> DownstreamSupervisor
    let logger: Logger

    private typealias Machine = PoolStateMachine<ContinuousClock.Instant>

    private struct State {
        var machine: Machine
        var supervisors: [Int: DownstreamSupervisor] = [:]
        var waiters: [Int: CheckedContinuation<Result<Int, Machine.Failure>, Never>] = [:]
        /// Outcomes decided before their waiter started waiting (the common case: a ready instance).
        var decided: [Int: Result<Int, Machine.Failure>] = [:]
        var nextWaiter = 0
        /// The last catalogue a ready instance announced (at its handshake and after each
        /// `list_changed`): what calls are checked against.
        var knownCatalogue: ServerCatalogue? {
            didSet {
                knownTools = Dictionary(
                    (knownCatalogue?.tools ?? []).compactMap { entry in entry["name"]?.stringValue.map { ($0, entry) } },
                    uniquingKeysWith: { a, _ in a })
                catalogueRevision = DownstreamPool.revisions.add(1, ordering: .relaxed).newValue
            }
        }
        /// `knownCatalogue`'s tools by name.
        var knownTools: [String: JSONValue] = [:]
        /// Unique across pools, new with every catalogue: what a tool's definition was checked at.
        var catalogueRevision: UInt64 = 0
        var restarts = 0
        var handler: DownstreamSupervisor.MessageHandler?
    }

    private let state: Mutex<State>
    /// Instances to run, picked up by `run`'s task group.
    private let launches: AsyncStream<DownstreamSupervisor>
    private let launch: AsyncStream<DownstreamSupervisor>.Continuation
    /// Fired by `close()`.
    private let closing = StopSignal()
    /// Fired when `run` has returned: every instance has stopped.
    package let finished = StopSignal()

    /// Whether a call's trace context goes in its `_meta`: a stdio server has no headers, and an SSE
    /// server's requests are posted by the connection's own task, not the call's. A Streamable HTTP
    /// server gets it in the `traceparent` header, and its requests' bodies go unchanged.
    package let traceInMeta: Bool

    package init(
        serverID: String, policy: PoolPolicy, traceInMeta: Bool, logger: Logger,
        makeSupervisor: @escaping @Sendable () -> DownstreamSupervisor
    ) {
        self.serverID = serverID
        self.traceInMeta = traceInMeta
        self.policy = policy
        self.logger = logger
        self.makeSupervisor = makeSupervisor
        self.state = Mutex(State(machine: Machine(policy: policy)))
        (launches, launch) = AsyncStream.makeStream(of: DownstreamSupervisor.self)
        self.queueWait = Timer(label: "warden_mcp_server_queue_wait_seconds", dimensions: [("server", serverID)])
        self.inFlight = Meter(label: "warden_mcp_server_in_flight", dimensions: [("server", serverID)])
    }

    /// This server's metrics, made once (a lookup per call would cost the hot path).
    private let queueWait: Timer
    private let inFlight: Meter

    /// One instance of an existing supervisor (tests of routing; started on first use).
    package convenience init(supervisor: DownstreamSupervisor) {
        self.init(
            serverID: supervisor.serverID, policy: PoolPolicy(startAtBoot: false), traceInMeta: true, logger: Logger(label: "warden.gateway.pool")
        ) { supervisor }
    }

    package func setMessageHandler(_ handler: @escaping DownstreamSupervisor.MessageHandler) {
        let supervisors = state.withLock { state -> [DownstreamSupervisor] in
            state.handler = handler
            return Array(state.supervisors.values)
        }
        for supervisor in supervisors { supervisor.setMessageHandler(handler) }
    }

    static let revisions = Atomic<UInt64>(0)

    /// The tools the server last listed, by name, and the revision of that listing.
    package struct Listing: Sendable {
        package var tools: [String: JSONValue]
        package var revision: UInt64
    }

    /// Whether the server's last listing has `tool` (false before it listed any); never waits.
    package func lists(tool: String) -> Bool {
        state.withLock { $0.knownTools[tool] != nil }
    }

    /// The tools calls are checked against: the last listing, or (for a server not listed yet, a
    /// per-user server's new instances say) the first one, an instance started if none runs; why
    /// not, when none came within `timeout` (the server's own reason, as a call would get it).
    package func listing(timeout: Duration) async -> Result<Listing, DownstreamError> {
        func known() -> Listing? {
            state.withLock { $0.knownCatalogue == nil ? nil : Listing(tools: $0.knownTools, revision: $0.catalogueRevision) }
        }
        if let listing = known() { return .success(listing) }
        let outcome = await wait(timeout: timeout) { waiter, machine in machine.warmUp(waiter, now: .now) }
        if let listing = known() { return .success(listing) }
        if case .failure(let failure) = outcome { return .failure(DownstreamError(.unavailable, server: serverID, Self.describe(failure))) }
        return .failure(DownstreamError(.unavailable, server: serverID, "the server has not listed its tools"))
    }

    /// The server as a whole: ready when an instance is; idle (with its last catalogue) when none runs.
    package var status: DownstreamServerStatus {
        let (statuses, known, closed) = state.withLock { state in
            (state.supervisors.sorted { $0.key < $1.key }.map(\.value.status), state.knownCatalogue, state.machine.closed)
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
    package var instanceCount: Int { state.withLock { $0.supervisors.count } }

    /// Starts the boot instance, runs every instance as a child task and stops idle ones, until
    /// `close()`, graceful shutdown or cancellation; then stops every instance and waits for them.
    package func run() async {
        perform(state.withLock { $0.machine.boot(now: .now) })
        await withDiscardingTaskGroup { group in
            group.addTask {
                while await self.idleTick() { self.reapIdle(now: .now) }
                self.perform(self.state.withLock { $0.machine.shutdown() })
                self.launch.finish()
            }
            for await supervisor in launches {
                group.addTask { _ = try? await supervisor.run() }
            }
        }
        finished.fire()
    }

    /// Stops the pool (its server was removed or changed): `run` returns once every instance stopped.
    package func close() {
        closing.fire()
    }

    /// Waits half a second; false once the pool is closing (`close()`, graceful shutdown, cancellation).
    private func idleTick() async -> Bool {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.closing.wait() }
            group.addTask { try? await gracefulShutdown() }
            group.addTask { try? await Task.sleep(for: .milliseconds(500)) }
            await group.next()
            group.cancelAll()
        }
        return !(closing.isFired || Task.isShuttingDownGracefully || Task.isCancelled)
    }

    /// Makes sure the catalogue is known: starts an instance of a server never seen and waits for
    /// it (listings of lazily started servers), up to `timeout`.
    func warmUp(timeout: Duration) async {
        guard state.withLock({ $0.knownCatalogue == nil && $0.machine.isEmpty && !$0.machine.closed }) else { return }
        _ = await wait(timeout: timeout) { waiter, machine in machine.warmUp(waiter, now: .now) }
    }

    /// Forwards a request to the best instance, starting one when none runs or all are busy.
    package func call(_ method: String, params: JSONValue?, timeout: Duration? = nil) async throws -> JSONValue {
        let chosen: Int
        let queued = ContinuousClock.now
        let waited = await wait(timeout: Self.startTimeout, { waiter, machine in machine.call(waiter, now: .now) })
        queueWait.record(duration: ContinuousClock.now - queued)
        switch waited {
        case .success(let number): chosen = number
        case .failure where Task.isCancelled: throw CancellationError()
        case .failure(let failure): throw DownstreamError(.unavailable, server: serverID, Self.describe(failure))
        }
        inFlight.increment()
        defer {
            inFlight.decrement()
            state.withLock { $0.machine.callFinished(on: chosen, now: .now) }
        }
        guard let supervisor = state.withLock({ $0.supervisors[chosen] }) else {
            throw DownstreamError(.unavailable, server: serverID, "the server stopped")
        }
        return try await supervisor.call(method, params: params, timeout: timeout)
    }

    /// How long a call waits for a starting instance.
    static let startTimeout = Duration.seconds(30)

    static func describe(_ failure: PoolStateMachine<ContinuousClock.Instant>.Failure) -> String {
        switch failure {
        case .stopping: "the gateway is stopping"
        case .notReady(let detail): "the server is not ready\(detail.map { ": \($0)" } ?? "")"
        case .didNotStart(let detail): "the server did not become ready\(detail.map { ": \($0)" } ?? "")"
        case .timedOut: "the server did not become ready in time"
        }
    }

    /// Registers a waiter and applies `event`. When that decides at once (an instance is ready), the
    /// outcome is returned without waiting; otherwise it waits until an action resumes or fails the
    /// waiter, `timeout` passes, or the caller is cancelled.
    private func wait(
        timeout: Duration, _ event: @Sendable (Int, inout Machine) -> [Machine.Action]
    ) async -> Result<Int, Machine.Failure> {
        let (waiter, actions) = state.withLock { state -> (Int, [Machine.Action]) in
            state.nextWaiter += 1
            return (state.nextWaiter, event(state.nextWaiter, &state.machine))
        }
        // This waiter's own outcome, when decided at once, needs no hand-over.
        var own: Result<Int, Machine.Failure>?
        var others: [Machine.Action] = []
        for action in actions {
            switch action {
            case .resume(waiter, let instance): own = .success(instance)
            case .fail(waiter, let failure): own = .failure(failure)
            default: others.append(action)
            }
        }
        perform(others)
        if let own { return own }
        return await withTaskGroup(of: Result<Int, Machine.Failure>?.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let decided = self.state.withLock { state -> Result<Int, Machine.Failure>? in
                            if let decided = state.decided.removeValue(forKey: waiter) { return decided }
                            state.waiters[waiter] = continuation
                            return nil
                        }
                        if let decided { continuation.resume(returning: decided) }
                    }
                } onCancel: {
                    self.perform(self.state.withLock { $0.machine.waiterTimedOut(waiter) })
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            if let first { return first }
            // The deadline passed: the waiter gives up (resumed with `timedOut` by the cancellation).
            return await group.next()! ?? .failure(.timedOut)
        }
    }

    /// Hands a waiter its outcome: to its continuation, or kept until it starts waiting.
    private func deliver(_ outcome: Result<Int, Machine.Failure>, to waiter: Int) {
        let continuation = state.withLock { state in
            guard let continuation = state.waiters.removeValue(forKey: waiter) else {
                state.decided[waiter] = outcome
                return nil as CheckedContinuation<Result<Int, Machine.Failure>, Never>?
            }
            return continuation
        }
        continuation?.resume(returning: outcome)
    }

    /// Does what the machine asked, outside the lock. Returns how many instances it stopped.
    @discardableResult
    private func perform(_ actions: [Machine.Action]) -> Int {
        var stoppedCount = 0
        for action in actions {
            switch action {
            case .startInstance(let number):
                start(number)
            case .stopInstances(let numbers):
                let stopped = state.withLock { state -> [DownstreamSupervisor] in
                    numbers.compactMap { number in
                        if let catalogue = state.supervisors[number]?.status.catalogue { state.knownCatalogue = catalogue }
                        return state.supervisors.removeValue(forKey: number)
                    }
                }
                for supervisor in stopped { supervisor.stop() }
                stoppedCount += stopped.count
            case .resume(let waiter, let instance):
                deliver(.success(instance), to: waiter)
            case .fail(let waiter, let failure):
                deliver(.failure(failure), to: waiter)
            }
        }
        return stoppedCount
    }

    /// A new instance: its supervisor reports its state changes to the machine.
    private func start(_ number: Int) {
        let supervisor = makeSupervisor()
        supervisor.setStateObserver { [weak self] status in self?.observe(status, of: number) }
        // The machine may have stopped it (or closed) since it decided to start it.
        let count = state.withLock { state -> Int? in
            guard state.machine.instances[number] != nil, !state.machine.closed else { return nil }
            if let handler = state.handler { supervisor.setMessageHandler(handler) }
            state.supervisors[number] = supervisor
            return state.supervisors.count
        }
        guard let count else { return }
        launch.yield(supervisor)
        logger.info("MCP server instance started", metadata: ["mcp.server": "\(serverID)", "mcp.instances": "\(count)"])
    }

    private func observe(_ status: DownstreamServerStatus, of number: Int) {
        let actions = state.withLock { state -> [Machine.Action] in
            switch status.state {
            case .ready:
                if let catalogue = status.catalogue { state.knownCatalogue = catalogue }
                return state.machine.instanceReady(number, now: .now)
            case .starting:
                state.machine.instanceStarting(number)
                return []
            case .failed, .stopped, .idle:
                return state.machine.instanceFailed(number, detail: status.detail)
            }
        }
        perform(actions)
    }

    /// Stops instances idle for longer than the policy allows, keeping the minimum.
    func reapIdle(now: ContinuousClock.Instant) {
        let actions = state.withLock { $0.machine.reapIdle(now: now) }
        let stopped = perform(actions)
        if stopped > 0 {
            logger.info("idle MCP server instances stopped", metadata: ["mcp.server": "\(serverID)", "mcp.stopped": "\(stopped)"])
        }
    }
}
