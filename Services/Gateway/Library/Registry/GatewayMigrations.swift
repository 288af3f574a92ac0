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

    /// Pinned tool definitions (issue #13, tool pinning) and each org's trust setting. A deployment
    /// that already has servers keeps working as before: its orgs trust tools on first use (`*`);
    /// a new deployment holds new tools for approval until an org says otherwise.
    package static let toolPins = Migration(
        version: 4,
        name: "tool_pins",
        statements: [
            """
            CREATE TABLE tool_pins (
                org text NOT NULL,
                tool text NOT NULL,
                approved_fingerprint text,
                approved_definition text,
                approved_by text,
                approved_at timestamptz,
                pending_fingerprint text,
                pending_definition text,
                pending_flags text[] NOT NULL DEFAULT '{}',
                pending_since timestamptz,
                first_seen timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (org, tool)
            )
            """,
            """
            CREATE TABLE tool_trust (
                org text PRIMARY KEY,
                mode text NOT NULL CHECK (mode IN ('first-use', 'approval')),
                set_by text NOT NULL,
                set_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "INSERT INTO tool_trust (org, mode, set_by) SELECT '*', 'first-use', 'upgrade' WHERE EXISTS (SELECT 1 FROM mcp_servers)",
        ]
    )

    /// Approval notices (issue #14): Slack button clicks already received (a replayed click is
    /// refused) and notices that could not be delivered after every attempt (dead letters).
    package static let approvalNotices = Migration(
        version: 5,
        name: "approval_notices",
        statements: [
            "CREATE TABLE slack_actions_seen (signature text PRIMARY KEY, seen_at timestamptz NOT NULL DEFAULT now())",
            """
            CREATE TABLE approval_notice_failures (
                id bigserial PRIMARY KEY,
                org text NOT NULL,
                channel text NOT NULL,
                change_id text NOT NULL,
                event text NOT NULL,
                request_id text NOT NULL,
                attempts int NOT NULL,
                error text NOT NULL,
                failed_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX approval_notice_failures_by_org ON approval_notice_failures (org, failed_at DESC)",
        ]
    )

    /// Audit sinks and continuity (issue #15): how far each org's webhook sinks have got (and who
    /// is delivering to one now), and the orgs that let their agents' requests continue unrecorded
    /// when the audit stream is unavailable.
    package static let auditSinks = Migration(
        version: 6,
        name: "audit_sinks",
        statements: [
            """
            CREATE TABLE audit_sink_cursors (
                org text NOT NULL,
                sink text NOT NULL,
                delivered_through bigint NOT NULL,
                attempts int NOT NULL DEFAULT 0,
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                leased_by text,
                leased_until timestamptz,
                last_error text,
                last_delivered_at timestamptz,
                PRIMARY KEY (org, sink)
            )
            """,
            "CREATE INDEX audit_sink_cursors_due ON audit_sink_cursors (next_attempt_at)",
            """
            CREATE TABLE audit_continuity (
                org text PRIMARY KEY,
                when_unavailable text NOT NULL CHECK (when_unavailable IN ('refuse', 'continue')),
                set_by text NOT NULL,
                set_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ]
    )
}
