import Foundation
import Logging
import PostgresNIO
import WardenServiceKit

package struct PostgresServerRegistryStore: ServerRegistryStore {
    let database: PostgresClient
    let logger: Logger

    package init(database: PostgresClient, logger: Logger) {
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
            "INSERT INTO mcp_servers (id, definition) VALUES (\(definition.id), \(json)::jsonb) ON CONFLICT (id) DO NOTHING RETURNING id",
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
            "UPDATE mcp_servers SET definition = \(json)::jsonb, updated_at = now() WHERE id = \(definition.id) RETURNING id",
            logger: logger
        )
        guard try await rows.collect().count == 1 else { throw RegistryError(.notFound, "no server with id '\(definition.id)'") }
    }

    package func delete(_ id: String) async throws {
        let rows = try await database.query("DELETE FROM mcp_servers WHERE id = \(id) RETURNING id", logger: logger)
        guard try await rows.collect().count == 1 else { throw RegistryError(.notFound, "no server with id '\(id)'") }
    }
}
