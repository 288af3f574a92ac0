import Logging
import ServiceLifecycle
import Synchronization
import WardenMCP

/// What the gateway knows about one downstream server right now.
public struct DownstreamServerStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        case starting
        case ready
        /// Stopped unexpectedly or failed to start; a restart is scheduled.
        case failed
        case stopped
    }

    public var serverID: String
    public var state: State
    /// Why it is not ready (for logs, `warden status` and error messages; never a secret).
    public var detail: String?
    public var catalogue: ServerCatalogue?
    public var restarts: Int
}

/// Keeps one stdio MCP server running: starts it, performs the handshake, lists its catalogue,
/// restarts it with backoff when it dies, and stops its whole process group on shutdown.
public final class StdioServerSupervisor: Service, Sendable {
    public let serverID: String
    let spec: StdioLaunchSpec
    let callTimeout: Duration
    let logger: Logger
    private let state: Mutex<(status: DownstreamServerStatus, connection: StdioServerConnection?, policy: RestartPolicy)>

    public init(serverID: String, spec: StdioLaunchSpec, callTimeout: Duration = .seconds(30), restartPolicy: RestartPolicy = RestartPolicy(), logger: Logger) {
        self.serverID = serverID
        self.spec = spec
        self.callTimeout = callTimeout
        self.logger = logger
        let status = DownstreamServerStatus(serverID: serverID, state: .starting, detail: nil, catalogue: nil, restarts: 0)
        self.state = Mutex((status, nil, restartPolicy))
    }

    public var status: DownstreamServerStatus { state.withLock { $0.status } }

    /// The running server's process group (its process id), while it runs.
    public var processGroup: Int32? { state.withLock { $0.connection?.processGroup } }

    /// Forwards a request to the running server; fails at once with `unavailable` while it is not ready.
    public func call(_ method: String, params: JSONValue?, timeout: Duration? = nil) async throws -> JSONValue {
        let (connection, status) = state.withLock { ($0.connection, $0.status) }
        guard let connection, status.state == .ready else {
            throw DownstreamError(.unavailable, server: serverID, "the server is \(status.state.rawValue)\(status.detail.map { ": \($0)" } ?? "")")
        }
        return try await connection.request(method, params: params, timeout: timeout ?? callTimeout)
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let connection = StdioServerConnection(serverID: serverID, spec: spec, logger: logger)
            let started = ContinuousClock.now
            update { $0.status.state = .starting; $0.connection = connection }
            let exitDetail = await runOnce(connection)
            let uptime = ContinuousClock.now - started
            let stopping = Task.isShuttingDownGracefully || Task.isCancelled
            let delay = update { state -> Duration in
                state.connection = nil
                state.status.catalogue = nil
                if stopping {
                    state.status.state = .stopped
                    state.status.detail = nil
                    return .zero
                }
                state.status.state = .failed
                state.status.detail = exitDetail
                state.status.restarts += 1
                return state.policy.delayAfterRun(lasting: uptime)
            }
            if stopping { break }
            logger.warning("stdio server stopped; restarting", metadata: ["reason": "\(exitDetail)", "restart.delay": "\(delay)"])
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
        }
        update { $0.status.state = .stopped }
    }

    /// How one life of the process ended, as seen by each of its two tasks.
    private enum Outcome: Sendable {
        case exited(String)
        case notStarted(String)
        case handshakeFailed(String)
        case served
    }

    /// One life of the process: start, handshake, serve until it exits or shutdown begins. Returns
    /// why it ended: a start failure wins over what the handshake saw meanwhile.
    private func runOnce(_ connection: StdioServerConnection) async -> String {
        let outcomes = await withTaskGroup(of: Outcome.self) { group -> [Outcome] in
            group.addTask {
                do {
                    return .exited("the process exited (\(try await connection.run()))")
                } catch {
                    return .notStarted("\(error)")
                }
            }
            group.addTask {
                do {
                    let catalogue = try await DownstreamHandshake.connect(connection, timeout: self.callTimeout)
                    self.update { $0.status.state = .ready; $0.status.detail = nil; $0.status.catalogue = catalogue }
                    self.logger.info("stdio server ready", metadata: ["mcp.tools": "\(catalogue.tools.count)", "mcp.protocol": "\(catalogue.protocolVersion)"])
                } catch {
                    self.logger.error("stdio server handshake failed", metadata: ["error": "\(error)"])
                    await Task { await connection.stop(grace: .milliseconds(500)) }.value
                    return .handshakeFailed("handshake failed: \(error)")
                }
                // Serve until shutdown (or cancellation), then stop the process; its exit ends the run task.
                try? await gracefulShutdown()
                await Task { await connection.stop() }.value
                return .served
            }
            var outcomes: [Outcome] = []
            while let outcome = await group.next() {
                outcomes.append(outcome)
                if case .served = outcome {} else { group.cancelAll() }
            }
            return outcomes
        }
        for case .notStarted(let reason) in outcomes { return reason }
        for case .handshakeFailed(let reason) in outcomes { return reason }
        for case .exited(let reason) in outcomes { return reason }
        return "stopped"
    }

    @discardableResult
    private func update<T>(_ body: (inout (status: DownstreamServerStatus, connection: StdioServerConnection?, policy: RestartPolicy)) -> T) -> T {
        state.withLock { body(&$0) }
    }
}
