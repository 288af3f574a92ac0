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

    /// Servers registered before the vault held their credentials keep them in plaintext until
    /// `CredentialMigration` moves them: this marks the rows it has done (new rows are born done).
    package static let credentialsInVault = Migration(
        version: 3,
        name: "mcp_servers_credentials_in_vault",
        statements: ["ALTER TABLE mcp_servers ADD COLUMN credentials_in_vault boolean NOT NULL DEFAULT false"]
    )
}
