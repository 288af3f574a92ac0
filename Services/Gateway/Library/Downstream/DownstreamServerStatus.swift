import Logging
import ServiceLifecycle
import Synchronization
import WardenMCP

/// What the gateway knows about one downstream server right now.
package struct DownstreamServerStatus: Sendable, Equatable {
    package enum State: String, Sendable {
        case starting
        case ready
        /// Stopped unexpectedly or failed to start; a restart is scheduled.
        case failed
        case stopped
        /// No instance runs (started on first use, or stopped for inactivity); starts on the next call.
        case idle
    }

    package var serverID: String
    package var state: State
    /// Why it is not ready (for logs, `warden status` and error messages; never a secret).
    package var detail: String?
    package var catalogue: ServerCatalogue?
    package var restarts: Int
}
