import Foundation
import Logging
import PostgresNIO
import WardenServiceKit

/// Registered servers in PostgreSQL. Every replica reads the same rows; changes are announced over
/// NATS so that running gateways apply them at once (and re-read periodically in case one was missed).
package protocol ServerRegistryStore: Sendable {
    func all() async throws -> [MCPServerDefinition]
    func insert(_ definition: MCPServerDefinition) async throws
    /// Inserts unless a server with that id exists (seeding from a file, several replicas at once).
    func insertIfAbsent(_ definition: MCPServerDefinition) async throws
    func update(_ definition: MCPServerDefinition) async throws
    func delete(_ id: String) async throws
}
