import Synchronization
import WardenMCP

/// What one client request produces, in order: messages for the client while it runs (progress,
/// logging), then its outcome. The endpoint answers with JSON when the outcome comes first and
/// switches to an SSE stream when a message does.
package enum CallOutput: Sendable, Equatable {
    case message(JSONRPCMessage)
    case outcome(Result<JSONValue, JSONRPCError>)
}

/// The channel one request's outputs travel through.
package final class CallChannel: Sendable {
    package let outputs: AsyncStream<CallOutput>
    private let continuation: AsyncStream<CallOutput>.Continuation

    package init() {
        (outputs, continuation) = AsyncStream.makeStream(of: CallOutput.self, bufferingPolicy: .bufferingOldest(4_096))
    }

    func send(_ message: JSONRPCMessage) { continuation.yield(.message(message)) }

    func finish(_ outcome: Result<JSONValue, JSONRPCError>) {
        continuation.yield(.outcome(outcome))
        continuation.finish()
    }
}
