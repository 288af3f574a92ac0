import Synchronization

/// Sessions in this process only: for unit tests and single-process experiments. Replicas need a
/// shared store (`NATSSessionStore`).
package final class InMemorySessionStore: MCPSessionStore {
    private let sessions = Mutex<[String: MCPSession]>([:])

    package init() {}

    package func save(_ session: MCPSession) async throws { sessions.withLock { $0[session.id] = session } }
    package func load(_ id: String) async throws -> MCPSession? { sessions.withLock { $0[id] } }
    package func delete(_ id: String) async throws { _ = sessions.withLock { $0.removeValue(forKey: id) } }
}
