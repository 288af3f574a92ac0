import Foundation
import Synchronization
import WardenMCP

/// Requests a downstream server makes of the client (sampling, elicitation, roots) while one of
/// the client's calls runs: sent to the client on that call's stream under an id of the gateway's,
/// and answered by the client's POST, which may reach any replica (relayed over NATS).
package final class ServerRequestRelay: Sendable {
    private struct Waiting {
        var session: String
        var continuation: CheckedContinuation<JSONRPCMessage?, Never>
        var channel: CallChannel
        /// The server and its id for the request, so that the server can cancel it.
        var origin: String
    }

    private let waiting = Mutex<[String: Waiting]>([:])
    private let counter = Mutex(0)
    /// Distinguishes this replica's ids from other replicas'.
    private let prefix: String

    package init() {
        var generator = SystemRandomNumberGenerator()
        prefix = "warden-" + String(generator.next() as UInt64, radix: 36)
    }

    /// The capability a client must have declared to be asked `method`.
    static func capability(for method: String) -> String? {
        switch method {
        case "sampling/createMessage": "sampling"
        case "elicitation/create": "elicitation"
        case "roots/list": "roots"
        default: nil
        }
    }

    /// Sends the request to the client through `channel` and waits for its answer (nil on timeout or
    /// when the call is cancelled).
    func ask(
        _ method: String, params: JSONValue?, session: String, channel: CallChannel, timeout: Duration,
        server: String = "", serverRequestID: JSONRPCID = .number("0")
    ) async -> JSONRPCMessage? {
        let id =
            prefix + "-"
            + String(
                counter.withLock {
                    $0 += 1; return $0
                })
        // The clock is a child task started once the question is registered: it ends with the
        // answer, and a cancelled call stops waiting at once.
        return await withTaskGroup(of: Void.self) { group in
            defer { group.cancelAll() }
            return await withCheckedContinuation { continuation in
                waiting.withLock {
                    $0[id] = Waiting(session: session, continuation: continuation, channel: channel, origin: Self.origin(server, serverRequestID))
                }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    self.deliver(id: id, session: session, nil)
                }
                channel.send(.request(id: .string(id), method: method, params: params))
            }
        }
    }

    /// Hands the client's answer to the waiting request; false when none waits here under that id
    /// for that session (another replica's, or a stale or forged answer).
    @discardableResult
    func deliver(id: String, session: String, _ answer: JSONRPCMessage?) -> Bool {
        let found = waiting.withLock { waiting -> Waiting? in
            guard let entry = waiting[id], entry.session == session else { return nil }
            return waiting.removeValue(forKey: id)
        }
        found?.continuation.resume(returning: answer)
        return found != nil
    }

    func isOurs(_ id: String) -> Bool { id.hasPrefix(prefix + "-") }

    static func origin(_ server: String, _ id: JSONRPCID) -> String { server + "\u{0}" + id.description }

    /// The server withdrew its request: the client is told (under the gateway's id) and nobody waits.
    @discardableResult
    func withdraw(server: String, serverRequestID: JSONRPCID, reason: JSONValue?) -> Bool {
        let origin = Self.origin(server, serverRequestID)
        let found = waiting.withLock { waiting -> (String, Waiting)? in
            guard let entry = waiting.first(where: { $0.value.origin == origin }) else { return nil }
            waiting[entry.key] = nil
            return (entry.key, entry.value)
        }
        guard let (id, entry) = found else { return false }
        var params: [(key: String, value: JSONValue)] = [("requestId", .string(id))]
        if let reason { params.append(("reason", reason)) }
        entry.channel.send(.notification(method: "notifications/cancelled", params: .object(params)))
        entry.continuation.resume(returning: nil)
        return true
    }
}
