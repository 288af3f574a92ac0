import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenMCP
import WardenNATS

/// The standing GET streams this replica holds, by session: where server-to-client messages that
/// belong to no request go (`list_changed`). Local by design: each replica notifies the streams it
/// holds when its own view of a server changes. A session ended anywhere closes its streams here
/// too (broadcast over NATS, see `GatewayBroadcasts`).
package final class SessionStreams: Sendable {
    private struct State {
        var next = 0
        var streams: [Int: (session: String, agent: String?, org: String?, continuation: AsyncStream<JSONRPCMessage>.Continuation)] = [:]
    }

    private let state = Mutex(State())

    package init() {}

    /// A new stream for `session`; it ends when the session ends or `close` is called with its number.
    func open(session: String, agent: String? = nil, org: String? = nil) -> (number: Int, messages: AsyncStream<JSONRPCMessage>) {
        let (messages, continuation) = AsyncStream.makeStream(of: JSONRPCMessage.self, bufferingPolicy: .bufferingNewest(256))
        let number = state.withLock { state -> Int in
            state.next += 1
            state.streams[state.next] = (session, agent, org, continuation)
            return state.next
        }
        return (number, messages)
    }

    func close(_ number: Int) {
        state.withLock { $0.streams.removeValue(forKey: number) }?.continuation.finish()
    }

    /// Sends a message to every stream this replica holds, or only to `org`'s (news of an org's own
    /// server is not shown to other orgs).
    func broadcast(_ message: JSONRPCMessage, org: String? = nil) {
        for stream in state.withLock({ Array($0.streams.values) }) where org == nil || stream.org == org { stream.continuation.yield(message) }
    }

    /// Sends a message to the streams of one session held here; false when there are none.
    @discardableResult
    func send(_ message: JSONRPCMessage, to session: String) -> Bool {
        let matching = state.withLock { $0.streams.values.filter { $0.session == session }.map(\.continuation) }
        for continuation in matching { continuation.yield(message) }
        return !matching.isEmpty
    }

    /// Ends every stream of `session`.
    func endSession(_ session: String) {
        let ended = state.withLock { state -> [AsyncStream<JSONRPCMessage>.Continuation] in
            let matching = state.streams.filter { $0.value.session == session }
            for key in matching.keys { state.streams[key] = nil }
            return matching.values.map(\.continuation)
        }
        for continuation in ended { continuation.finish() }
    }

    /// Ends every stream an agent holds here (its tokens were revoked).
    func endAgent(_ agent: String) {
        let ended = state.withLock { state -> [AsyncStream<JSONRPCMessage>.Continuation] in
            let matching = state.streams.filter { $0.value.agent == agent }
            for key in matching.keys { state.streams[key] = nil }
            return matching.values.map(\.continuation)
        }
        for continuation in ended { continuation.finish() }
    }

    var count: Int { state.withLock { $0.streams.count } }
}
