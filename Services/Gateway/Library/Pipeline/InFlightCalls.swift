import Synchronization
import WardenMCP

/// The downstream calls this replica is forwarding right now, so that what a server sends while
/// one runs reaches the right client, and a client's cancellation reaches the right call. The
/// rules are `InFlightCallsStateMachine`'s; this runner holds it under a lock and performs its
/// actions after the lock is released.
///
/// Per replica by nature: a call runs on the replica its HTTP request reached. Cancellations, which
/// may arrive at another replica, are broadcast over NATS and matched here.
package final class InFlightCalls: Sendable {
    /// A client's request: its session (nil for stateless requests) and JSON-RPC id.
    package struct RequestKey: Hashable, Sendable {
        package var session: String?
        package var id: JSONRPCID

        package init(session: String?, id: JSONRPCID) {
            self.session = session
            self.id = id
        }
    }

    private let state = Mutex(InFlightCallsStateMachine<CallChannel, Task<Void, Never>>())

    package init() {}

    /// Registers a call about to be forwarded; returns its number and the params to forward (with
    /// the gateway's progress token in place of the client's).
    func begin(server: String, params: JSONValue, channel: CallChannel, caller: MCPCaller? = nil) -> (number: Int, params: JSONValue) {
        state.withLock { $0.begin(server: server, params: params, channel: channel, caller: caller) }
    }

    func end(_ number: Int) {
        state.withLock { $0.end(number) }
    }

    /// Delivers a notification from `server` to the call it belongs to; false when none matches.
    @discardableResult
    func route(_ message: JSONRPCMessage, from server: String) -> Bool {
        switch state.withLock({ $0.notification(message, from: server) }) {
        case .deliver(let channel, let message):
            channel.send(message)
            return true
        case .drop:
            return false
        }
    }

    /// The client a server's own request is for, with the channel to its answer stream.
    func requester(for server: String) -> (channel: CallChannel, caller: MCPCaller)? {
        state.withLock { $0.requester(for: server) }
    }

    /// Remembers the task serving a client request, so a cancellation can stop it.
    func track(_ key: RequestKey, task: Task<Void, Never>) {
        state.withLock { $0.started(key, job: task) }
    }

    func untrack(_ key: RequestKey) {
        state.withLock { $0.finished(key) }
    }

    /// Cancels the request if this replica serves it; false otherwise.
    @discardableResult
    package func cancel(_ key: RequestKey) -> Bool {
        switch state.withLock({ $0.cancel(key) }) {
        case .cancel(let task):
            task.cancel()
            return true
        case .notHere:
            return false
        }
    }

    var count: Int { state.withLock { $0.count } }
}
