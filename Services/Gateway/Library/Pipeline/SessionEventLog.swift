import Foundation
import Logging
import Synchronization
import WardenMCP
import WardenNATS

/// One logged event: the message, and whether it ends its stream (the reply to the request).
package struct LoggedEvent: Sendable, Equatable {
    /// Nil for an answer the gateway made up (the instance running the request is gone).
    package var id: MCPEventID?
    package var message: JSONRPCMessage
    package var final: Bool
}

/// Where the events of resumable SSE streams are kept, shared by every gateway replica, so that a
/// client can resume (`Last-Event-ID`) on any replica, even after the one that started the stream
/// was restarted.
package protocol SessionEventLog: Sendable {
    /// Stores an event of the stream answering `request`, run by gateway instance `instance`, and
    /// returns its id.
    func append(session: String, stream: String, _ message: JSONRPCMessage, final: Bool, request: JSONRPCID, instance: String) async throws
        -> MCPEventID
    /// Opens the events of `after.stream` following `after`, then new ones as they are stored,
    /// until the final one; throws when the log cannot be read. The replay ends (without a final
    /// event) after `idleTimeout` without any event; sooner, with an error answer to the request,
    /// when the instance running it is gone (`isRunning`).
    func replay(session: String, after: MCPEventID, idleTimeout: Duration, isRunning: @escaping @Sendable (String) -> Bool) async throws
        -> EventReplay
}

/// The answer a resumed stream ends with when the gateway instance running its request stopped
/// before answering: the call's outcome is unknown, so the client decides whether to send it again.
func abandonedAnswer(to request: JSONRPCID) -> JSONRPCMessage {
    .error(
        id: request,
        JSONRPCError(
            code: JSONRPCError.Code.internalError,
            message: "the gateway instance running this request stopped before it answered; its outcome is unknown"))
}
