import WardenMCP

/// One downstream server's life as its supervisor sees it: starting, ready, restarting with backoff
/// after an end, stopped. A value type whose events return what to do next; no I/O, no clock of its
/// own. `DownstreamSupervisor` runs it: it connects, waits, and reports what happened.
struct SupervisorStateMachine: Sendable {
    enum Action: Sendable, Equatable {
        /// Start the process or open the connection, and perform the handshake.
        case connect
        /// Wait this long (unless stopped), then report `restartDue`.
        case restart(after: Duration)
        /// Nothing more to do: the supervisor's run ends.
        case finish
    }

    private(set) var status: DownstreamServerStatus
    private var restartPolicy: RestartPolicy
    private var stopping = false

    init(serverID: String, restartPolicy: RestartPolicy = RestartPolicy()) {
        self.status = DownstreamServerStatus(serverID: serverID, state: .starting, detail: nil, catalogue: nil, restarts: 0)
        self.restartPolicy = restartPolicy
    }

    /// The supervisor starts running.
    mutating func start() -> Action {
        guard !stopping else { return finish() }
        status.state = .starting
        return .connect
    }

    /// The handshake succeeded: calls may go to the server.
    mutating func handshakeSucceeded(_ catalogue: ServerCatalogue) {
        guard !stopping else { return }
        status.state = .ready
        status.detail = nil
        status.catalogue = catalogue
    }

    /// A listing changed (`list_changed`): the catalogue follows.
    mutating func listChanged(_ key: String, _ items: [JSONValue]) {
        switch key {
        case "tools": status.catalogue?.tools = items
        case "prompts": status.catalogue?.prompts = items
        default: status.catalogue?.resources = items
        }
    }

    /// The process exited, the connection ended or the handshake failed, after `uptime`.
    mutating func runEnded(_ detail: String, uptime: Duration) -> Action {
        status.catalogue = nil
        guard !stopping else { return finish() }
        status.state = .failed
        status.detail = detail
        status.restarts += 1
        return .restart(after: restartPolicy.delayAfterRun(lasting: uptime))
    }

    /// The backoff passed.
    mutating func restartDue() -> Action {
        guard !stopping else { return finish() }
        status.state = .starting
        return .connect
    }

    /// Stop: the running connection ends (its end is then reported) and no restart follows.
    mutating func stop() {
        stopping = true
    }

    private mutating func finish() -> Action {
        status.state = .stopped
        status.detail = nil
        status.catalogue = nil
        return .finish
    }
}
