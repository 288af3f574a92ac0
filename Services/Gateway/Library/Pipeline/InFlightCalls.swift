import Synchronization
import WardenMCP

/// The downstream calls this replica is forwarding right now, so that what a server sends while
/// one runs reaches the right client, and a client's cancellation reaches the right call.
///
/// Per replica by nature: a call runs on the replica its HTTP request reached. Cancellations, which
/// may arrive at another replica, are broadcast over NATS and matched here.
///
/// - Progress: the client's `progressToken` is replaced by one unique to this replica before the
///   call is forwarded (two clients may pick the same token), and mapped back on the way out.
/// - Logging and other unattributable notifications: delivered only when exactly one call is in
///   flight on that server; otherwise dropped, never guessed (another session may be another tenant).
package final class InFlightCalls: Sendable {
    struct Call {
        var server: String
        var channel: CallChannel
        var clientToken: JSONValue?
        var gatewayToken: String?
        var caller: MCPCaller?
    }

    /// A client's request: its session (nil for stateless requests) and JSON-RPC id.
    package struct RequestKey: Hashable, Sendable {
        package var session: String?
        package var id: JSONRPCID

        package init(session: String?, id: JSONRPCID) {
            self.session = session
            self.id = id
        }
    }

    private struct State {
        var next = 0
        var calls: [Int: Call] = [:]
        var byToken: [String: Int] = [:]
        var tasks: [RequestKey: Task<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    package init() {}

    /// Registers a call about to be forwarded; returns its number and the params to forward (with
    /// the gateway's progress token in place of the client's).
    func begin(server: String, params: JSONValue, channel: CallChannel, caller: MCPCaller? = nil) -> (number: Int, params: JSONValue) {
        let clientToken = params["_meta"]?["progressToken"]
        return state.withLock { state in
            state.next += 1
            let number = state.next
            var forwarded = params
            var gatewayToken: String?
            if let clientToken, let meta = params["_meta"] {
                let token = "warden-\(number)"
                gatewayToken = token
                state.byToken[token] = number
                forwarded = params.setting("_meta", to: meta.setting("progressToken", to: .string(token)))
            }
            state.calls[number] = Call(server: server, channel: channel, clientToken: clientToken, gatewayToken: gatewayToken, caller: caller)
            return (number, forwarded)
        }
    }

    func end(_ number: Int) {
        state.withLock { state in
            if let token = state.calls.removeValue(forKey: number)?.gatewayToken { state.byToken[token] = nil }
        }
    }

    /// Delivers a notification from `server` to the call it belongs to; false when none matches.
    @discardableResult
    func route(_ message: JSONRPCMessage, from server: String) -> Bool {
        guard case .notification(let method, let params) = message else { return false }
        let target = state.withLock { state -> (CallChannel, JSONRPCMessage)? in
            if method == "notifications/progress" {
                guard case .string(let token) = params?["progressToken"] ?? .null, let number = state.byToken[token],
                    let call = state.calls[number], call.server == server, let clientToken = call.clientToken
                else { return nil }
                return (call.channel, .notification(method: method, params: params?.setting("progressToken", to: clientToken)))
            }
            let onServer = state.calls.values.filter { $0.server == server }
            guard onServer.count == 1, let only = onServer.first else { return nil }
            return (only.channel, message)
        }
        guard let (channel, rewritten) = target else { return false }
        channel.send(rewritten)
        return true
    }

    /// The client a server's own request (sampling, elicitation, roots) is for: the caller of the
    /// only call in flight on that server, with the channel to its answer stream. Nil when there is
    /// no such call or more than one (never guess: the other may be another tenant's).
    func requester(for server: String) -> (channel: CallChannel, caller: MCPCaller)? {
        state.withLock { state in
            let onServer = state.calls.values.filter { $0.server == server }
            guard onServer.count == 1, let only = onServer.first, let caller = only.caller else { return nil }
            return (only.channel, caller)
        }
    }

    /// Remembers the task serving a client request, so a cancellation can stop it.
    func track(_ key: RequestKey, task: Task<Void, Never>) {
        state.withLock { $0.tasks[key] = task }
    }

    func untrack(_ key: RequestKey) {
        _ = state.withLock { $0.tasks.removeValue(forKey: key) }
    }

    /// Cancels the request if this replica serves it; false otherwise.
    @discardableResult
    package func cancel(_ key: RequestKey) -> Bool {
        guard let task = state.withLock({ $0.tasks.removeValue(forKey: key) }) else { return false }
        task.cancel()
        return true
    }

    var count: Int { state.withLock { $0.calls.count } }
}
