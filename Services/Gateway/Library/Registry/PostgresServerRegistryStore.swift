import Foundation
import Logging
import PostgresNIO
import WardenServiceKit

package struct PostgresServerRegistryStore: ServerRegistryStore {
    let database: DatabasePool
    let logger: Logger

    package init(database: DatabasePool, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    package func all() async throws -> [MCPServerDefinition] {
        var definitions: [MCPServerDefinition] = []
        let rows = try await database.query("SELECT definition::text FROM mcp_servers ORDER BY id", logger: logger)
        for try await text in rows.decode(String.self) {
            definitions.append(try JSONDecoder().decode(MCPServerDefinition.self, from: Data(text.utf8)))
        }
        return definitions
    }

    package func insert(_ definition: MCPServerDefinition) async throws {
        let json = String(decoding: try Self.encoder.encode(definition), as: UTF8.self)
        let rows = try await database.query(
            """
            INSERT INTO mcp_servers (id, definition, credentials_in_vault) VALUES (\(definition.id), \(json)::jsonb, true)
            ON CONFLICT (id) DO NOTHING RETURNING id
            """,
            logger: logger
        )
        guard try await rows.collect().count == 1 else { throw RegistryError(.conflict, "a server with id '\(definition.id)' exists") }
    }

    package func insertIfAbsent(_ definition: MCPServerDefinition) async throws {
        let json = String(decoding: try Self.encoder.encode(definition), as: UTF8.self)
        try await database.query(
            "INSERT INTO mcp_servers (id, definition) VALUES (\(definition.id), \(json)::jsonb) ON CONFLICT (id) DO NOTHING", logger: logger)
    }

    package func update(_ definition: MCPServerDefinition) async throws {
        let json = String(decoding: try Self.encoder.encode(definition), as: UTF8.self)
        let rows = try await database.query(
            """
            UPDATE mcp_servers SET definition = \(json)::jsonb, updated_at = now() WHERE id = \(definition.id) RETURNING id
            """,
            logger: logger
        )
        guard try await rows.collect().count == 1 else { throw RegistryError(.notFound, "no server with id '\(definition.id)'") }
    }

    package func withPlaintextCredentials() async throws -> [PlaintextServer] {
        var servers: [PlaintextServer] = []
        let rows = try await database.query(
            "SELECT definition::text, xmin::text FROM mcp_servers WHERE NOT credentials_in_vault ORDER BY id", logger: logger)
        for try await (text, stamp) in rows.decode((String, String).self) {
            servers.append(PlaintextServer(definition: try JSONDecoder().decode(MCPServerDefinition.self, from: Data(text.utf8)), stamp: stamp))
        }
        return servers
    }

    package func replacePlaintext(_ original: PlaintextServer, with definition: MCPServerDefinition) async throws -> Bool {
        let json = String(decoding: try Self.encoder.encode(definition), as: UTF8.self)
        let rows = try await database.query(
            """
            UPDATE mcp_servers SET definition = \(json)::jsonb, credentials_in_vault = true, updated_at = now()
            WHERE id = \(definition.id) AND NOT credentials_in_vault AND xmin::text = \(original.stamp) RETURNING id
            """,
            logger: logger
        )
        return try await rows.collect().count == 1
    }

    package func compact() async throws {
        try await database.query("VACUUM FULL mcp_servers", logger: logger)
    }

    package func delete(_ id: String) async throws {
        let rows = try await database.query("DELETE FROM mcp_servers WHERE id = \(id) RETURNING id", logger: logger)
        guard try await rows.collect().count == 1 else { throw RegistryError(.notFound, "no server with id '\(id)'") }
    }
}
