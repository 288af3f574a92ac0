import Synchronization
import WardenMCP

/// Stream events in this process only: for unit tests. A replay yields what was stored after the
/// given event and ends (it does not follow a stream still being written).
package final class InMemorySessionEventLog: SessionEventLog {
    private let events = Mutex<[(session: String, event: LoggedEvent)]>([])

    package init() {}

    package func append(session: String, stream: String, _ message: JSONRPCMessage, final: Bool, request: JSONRPCID, instance: String) async throws
        -> MCPEventID
    {
        events.withLock { events in
            let id = MCPEventID(stream: stream, sequence: UInt64(events.count + 1))
            events.append((session, LoggedEvent(id: id, message: message, final: final)))
            return id
        }
    }

    package func replay(session: String, after: MCPEventID, idleTimeout: Duration, isRunning: @escaping @Sendable (String) -> Bool) async throws
        -> EventReplay
    {
        let found = events.withLock { events in
            events.filter { $0.session == session && $0.event.id?.stream == after.stream && ($0.event.id?.sequence ?? 0) > after.sequence }.map(
                \.event)
        }
        return EventReplay { deliver in
            for event in found { try await deliver(event) }
        }
    }
}
