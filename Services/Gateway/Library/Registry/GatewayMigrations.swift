import Foundation
import Logging
import PostgresNIO
import WardenServiceKit

/// The gateway's schema: registered MCP servers.
package enum GatewayMigrations {
    package static let servers = Migration(
        version: 2,
        name: "mcp_servers",
        statements: [
            """
            CREATE TABLE mcp_servers (
                id text PRIMARY KEY,
                definition jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            )
            """
        ]
    )
}
