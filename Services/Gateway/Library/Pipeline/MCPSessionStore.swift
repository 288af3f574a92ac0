import Foundation
import Synchronization
import WardenMCP
import WardenNATS

/// Where sessions live. Replicas must share it.
package protocol MCPSessionStore: Sendable {
    func save(_ session: MCPSession) async throws
    func load(_ id: String) async throws -> MCPSession?
    func delete(_ id: String) async throws
}
