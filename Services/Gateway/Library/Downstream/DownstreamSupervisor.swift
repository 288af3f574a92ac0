import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import WardenMCP

/// Keeps one downstream MCP server connected: starts its process or opens its connection, performs
/// the handshake, lists its catalogue, reconnects with backoff when the connection ends, and stops
/// it (for stdio: its whole process group) on shutdown. The same loop serves every transport; only
/// `connect` differs.
package final class DownstreamSupervisor: Service, Sendable {
    package let serverID: String
    /// "stdio", "streamable-http" or "sse", for status output.
    package let transport: String
    let callTimeout: Duration
    let logger: Logger
    let connect: @Sendable () -> any DownstreamConnection
    /// `admitting` turns false in `stop()`: from then on no call is admitted.
    private let state: Mutex<(machine: SupervisorStateMachine, connection: (any DownstreamConnection)?, admitting: Bool)>
    /// Fired by `stop()`: this instance ends while others of its pool go on.
    private let stopSignal = StopSignal()
    private let messageHandler = Mutex<MessageHandler?>(nil)
    /// Calls in flight, and who waits for them to finish before the connection stops.
    private let calls = Mutex<(count: Int, drained: [Int: CheckedContinuation<Void, Never>], nextWaiter: Int)>((0, [:], 0))

    /// Receives what the server sends on its own (notifications, its requests), after the
    /// supervisor has applied list changes to the catalogue.
    package typealias MessageHandler = @Sendable (_ server: String, _ message: JSONRPCMessage, _ transport: any DownstreamTransport) async -> Void

    package func setMessageHandler(_ handler: @escaping MessageHandler) {
        messageHandler.withLock { $0 = handler }
    }

    private let stateObserver = Mutex<(@Sendable (DownstreamServerStatus) -> Void)?>(nil)

    /// Told every state change (starting, ready, failed, stopped): the pool resumes its waiting
    /// callers from these, instead of polling.
    package func setStateObserver(_ observer: @escaping @Sendable (DownstreamServerStatus) -> Void) {
        stateObserver.withLock { $0 = observer }
    }

    /// Tells the observer the current status (outside every lock).
    private func announce() {
        let status = self.status
        stateObserver.withLock { $0 }?(status)
    }

    package init(
        serverID: String,
        transport: String,
        callTimeout: Duration = .seconds(30),
        restartPolicy: RestartPolicy = RestartPolicy(),
        logger: Logger,
        connect: @escaping @Sendable () -> any DownstreamConnection
    ) {
        self.serverID = serverID
        self.transport = transport
        self.callTimeout = callTimeout
        var logger = logger
        logger[metadataKey: "mcp.server"] = "\(serverID)"
        self.logger = logger
        self.connect = connect
        self.state = Mutex((SupervisorStateMachine(serverID: serverID, restartPolicy: restartPolicy), nil, true))
    }

    /// A stdio server: a process the gateway starts.
    package convenience init(
        serverID: String, spec: StdioLaunchSpec, credentials: ServerCredentials? = nil, callTimeout: Duration = .seconds(30),
        restartPolicy: RestartPolicy = RestartPolicy(), logger: Logger
    ) {
        self.init(serverID: serverID, transport: "stdio", callTimeout: callTimeout, restartPolicy: restartPolicy, logger: logger) {
            StdioServerConnection(serverID: serverID, spec: spec, credentials: credentials, logger: logger)
        }
    }

    /// A remote server over Streamable HTTP or legacy HTTP+SSE.
    package convenience init(
        serverID: String, http spec: HTTPServerSpec, credentials: ServerCredentials? = nil, callTimeout: Duration = .seconds(30),
        restartPolicy: RestartPolicy = RestartPolicy(), logger: Logger
    ) {
        self.init(serverID: serverID, transport: spec.transport.rawValue, callTimeout: callTimeout, restartPolicy: restartPolicy, logger: logger) {
            switch spec.transport {
            case .streamableHTTP:
                StreamableHTTPConnection(serverID: serverID, spec: spec, credentials: credentials, callTimeout: callTimeout, logger: logger)
            case .sse: LegacySSEConnection(serverID: serverID, spec: spec, credentials: credentials, logger: logger)
            }
        }
    }

    package var status: DownstreamServerStatus { state.withLock { $0.machine.status } }

    /// A stdio server's process group (its process id), while it runs.
    package var processGroup: Int32? { state.withLock { ($0.connection as? StdioServerConnection)?.processGroup } }

    /// Forwards a request to the running server; fails at once with `unavailable` while it is not ready.
    package func call(_ method: String, params: JSONValue?, timeout: Duration? = nil) async throws -> JSONValue {
        // Admitted and counted in one step: once `stop()` has run, no call is admitted, so the drain
        // that follows waits for every call that was.
        let (connection, status, admitted) = state.withLock { state in
            let admitted = state.connection != nil && state.machine.status.state == .ready && state.admitting
            if admitted { calls.withLock { $0.count += 1 } }
            return (state.connection, state.machine.status, admitted)
        }
        guard admitted, let connection else {
            let detail = status.state == .ready ? "stopping" : "\(status.state.rawValue)\(status.detail.map { ": \($0)" } ?? "")"
            throw DownstreamError(.unavailable, server: serverID, "the server is \(detail)")
        }
        defer {
            let drained = calls.withLock { calls -> [CheckedContinuation<Void, Never>] in
                calls.count -= 1
                guard calls.count == 0 else { return [] }
                defer { calls.drained = [:] }
                return Array(calls.drained.values)
            }
            for waiter in drained { waiter.resume() }
        }
        return try await connection.request(method, params: params, timeout: timeout ?? callTimeout)
    }

    /// Returns once no call is in flight, or after `limit`.
    private func drain(limit: Duration) async {
        let waiter = calls.withLock { calls in
            calls.nextWaiter += 1
            return calls.nextWaiter
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let idle = self.calls.withLock { calls -> Bool in
                            if calls.count == 0 || Task.isCancelled { return true }
                            calls.drained[waiter] = continuation
                            return false
                        }
                        if idle { continuation.resume() }
                    }
                } onCancel: {
                    self.calls.withLock { $0.drained.removeValue(forKey: waiter) }?.resume()
                }
            }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Runs the server until `stop()`, graceful shutdown or cancellation: connects, reconnects with
    /// backoff when the connection ends, as `SupervisorStateMachine` says.
    package func run() async throws {
        var action = state.withLock { $0.machine.start() }
        announce()
        while true {
            switch action {
            case .connect:
                let connection = connect()
                let started = ContinuousClock.now
                state.withLock { $0.connection = connection }
                let exitDetail = await runOnce(connection)
                if isStopping { state.withLock { $0.machine.stop() } }
                action = state.withLock { state in
                    state.connection = nil
                    return state.machine.runEnded(exitDetail, uptime: ContinuousClock.now - started)
                }
                announce()
                if case .restart(let delay) = action {
                    Counter(label: "warden_mcp_server_restarts_total", dimensions: [("server", serverID)]).increment()
                    logger.warning("MCP server connection ended; reconnecting", metadata: ["reason": "\(exitDetail)", "restart.delay": "\(delay)"])
                }
            case .restart(let delay):
                await waitUntilStopped(orAfter: delay)
                if isStopping { state.withLock { $0.machine.stop() } }
                action = state.withLock { $0.machine.restartDue() }
                announce()
            case .finish:
                return
            }
        }
    }

    /// Ends this instance: its connection stops and it is not restarted.
    package func stop() {
        // Under the lock: `call` sees either no stop (and is counted) or the stop (and is refused).
        state.withLock { state in
            state.machine.stop()
            state.admitting = false
        }
        stopSignal.fire()
    }

    private var isStopping: Bool { stopSignal.isFired || Task.isShuttingDownGracefully || Task.isCancelled }

    /// Returns on `stop()`, graceful shutdown or cancellation, or after `delay` when given.
    private func waitUntilStopped(orAfter delay: Duration? = nil) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.stopSignal.wait() }
            group.addTask { try? await gracefulShutdown() }
            if let delay { group.addTask { try? await Task.sleep(for: delay) } }
            await group.next()
            group.cancelAll()
        }
    }

    /// How one life of the process ended, as seen by each of its two tasks.
    private enum Outcome: Sendable {
        case exited(String)
        case notStarted(String)
        case handshakeFailed(String)
        case served
        case drained
    }

    /// One life of the process: start, handshake, serve until it exits or shutdown begins. Returns
    /// why it ended: a start failure wins over what the handshake saw meanwhile.
    private func runOnce(_ connection: any DownstreamConnection) async -> String {
        let outcomes = await withTaskGroup(of: Outcome.self) { group -> [Outcome] in
            group.addTask {
                do {
                    return .exited(try await connection.serve())
                } catch {
                    return .notStarted("\(error)")
                }
            }
            group.addTask {
                do {
                    guard let catalogue = try await self.handshake(connection) else {
                        // Stopped during the handshake: no need to wait for it to finish.
                        await Self.stopInFull(connection, grace: .milliseconds(500))
                        return .served
                    }
                    self.state.withLock { $0.machine.handshakeSucceeded(catalogue) }
                    self.announce()
                    self.logger.info(
                        "MCP server ready", metadata: ["mcp.tools": "\(catalogue.tools.count)", "mcp.protocol": "\(catalogue.protocolVersion)"])
                } catch {
                    self.logger.error("MCP server handshake failed", metadata: ["error": "\(error)"])
                    await Self.stopInFull(connection, grace: .milliseconds(500))
                    return .handshakeFailed("handshake failed: \(error)")
                }
                // Serve until stopped (or shutdown, or cancellation), then stop the process; its exit
                // ends the run task. An instance stopped on its own (its server changed, or a secret
                // it uses did) first lets the calls it has finish.
                await self.waitUntilStopped()
                if self.stopSignal.isFired, !Task.isShuttingDownGracefully { await self.drain(limit: self.callTimeout) }
                await Self.stopInFull(connection, grace: .seconds(2))
                return .served
            }
            group.addTask {
                for await message in connection.incoming { await self.received(message, from: connection) }
                return .drained
            }
            var outcomes: [Outcome] = []
            while let outcome = await group.next() {
                outcomes.append(outcome)
                switch outcome {
                case .served, .drained: break
                default: group.cancelAll()
                }
            }
            return outcomes
        }
        for case .notStarted(let reason) in outcomes { return reason }
        for case .handshakeFailed(let reason) in outcomes { return reason }
        for case .exited(let reason) in outcomes { return reason }
        return "stopped"
    }

    /// Stops the connection, awaited but apart from this task's cancellation: a shutdown cancels
    /// the instance, and its server must still get the grace to exit before it is killed.
    private static func stopInFull(_ connection: any DownstreamConnection, grace: Duration) async {
        await Task { await connection.stop(grace: grace) }.value
    }

    /// The handshake, unless `stop()` comes first (nil then).
    private func handshake(_ connection: any DownstreamConnection) async throws -> ServerCatalogue? {
        try await withThrowingTaskGroup(of: ServerCatalogue?.self) { group in
            group.addTask { try await DownstreamHandshake.connect(connection, timeout: self.callTimeout) }
            group.addTask {
                await self.stopSignal.wait()
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// The listing each `list_changed` notification invalidates.
    static let listings: [String: (method: String, key: String)] = [
        "notifications/tools/list_changed": ("tools/list", "tools"),
        "notifications/prompts/list_changed": ("prompts/list", "prompts"),
        "notifications/resources/list_changed": ("resources/list", "resources"),
    ]

    private func received(_ message: JSONRPCMessage, from connection: any DownstreamConnection) async {
        if case .notification(let method, _) = message, let listing = Self.listings[method] {
            do {
                let items = try await DownstreamHandshake.list(connection, listing.method, key: listing.key, timeout: callTimeout)
                state.withLock { $0.machine.listChanged(listing.key, items) }
                // The pool checks calls against the catalogue it was last told of.
                announce()
                logger.info("MCP server changed its list", metadata: ["mcp.list": "\(listing.key)", "mcp.count": "\(items.count)"])
            } catch {
                logger.warning("could not re-list after a change", metadata: ["mcp.list": "\(listing.key)", "error": "\(error)"])
            }
        }
        if let handler = messageHandler.withLock({ $0 }) {
            await handler(serverID, message, connection)
        } else if case .request(let id, let method, _) = message {
            try? await connection.send(.error(id: id, .methodNotFound(method)))
        }
    }
}
