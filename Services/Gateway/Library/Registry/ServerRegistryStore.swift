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
    /// Its plaintext values are moved into the vault by `CredentialMigration`.
    func insertIfAbsent(_ definition: MCPServerDefinition) async throws
    /// Servers whose plaintext values have not been moved into the vault yet.
    func withPlaintextCredentials() async throws -> [PlaintextServer]
    /// Stores `definition` (its values now references) as moved, unless the row changed since it was read.
    func replacePlaintext(_ original: PlaintextServer, with definition: MCPServerDefinition) async throws -> Bool
    /// Rewrites the table's files, so that replaced row versions (plaintext values) are gone.
    func compact() async throws
    func update(_ definition: MCPServerDefinition) async throws
    func delete(_ id: String) async throws
}
