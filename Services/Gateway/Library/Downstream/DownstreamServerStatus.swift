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
        /// No instance runs (started on first use, or stopped for inactivity); starts on the next call.
        case idle
    }

    public var serverID: String
    public var state: State
    /// Why it is not ready (for logs, `warden status` and error messages; never a secret).
    public var detail: String?
    public var catalogue: ServerCatalogue?
    public var restarts: Int
}
