import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// The MCP clients the authorization server knows (registered by an org's admins, dynamically,
/// or by metadata document), and each org's choice to accept the last two. The gateway validates
/// what a client says (redirect URIs, name); this keeps it.
package struct AuthorizationClients: Sendable {
    let database: DatabasePool
    let logger: Logger

    /// The authorization server's tables (all of them: clients, settings, passwords, failures,
    /// sessions, consents, codes, refresh-token families and tokens). Codes, tokens and sessions
    /// are kept as SHA-256 digests only.
    package static let migration = Migration(
        version: 8,
        name: "authorization_server",
        statements: [
            """
            CREATE TABLE authz_clients (
                id text PRIMARY KEY,
                kind text NOT NULL,
                name text NOT NULL,
                redirect_uris text[] NOT NULL,
                org text,
                created_at timestamptz NOT NULL DEFAULT now(),
                fetched_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE TABLE authz_settings (org text PRIMARY KEY, dynamic_clients boolean NOT NULL)",
            // Agents a consent's withdrawal disabled (a later consent enables them again; an admin's disabling stands).
            "CREATE TABLE authz_withdrawn_agents (org text NOT NULL, agent text NOT NULL, PRIMARY KEY (org, agent))",
            """
            CREATE TABLE authz_passwords (
                org text NOT NULL, user_id text NOT NULL, hash text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (org, user_id)
            )
            """,
            "CREATE TABLE authz_failures (key text PRIMARY KEY, failures int NOT NULL, first_at timestamptz NOT NULL, locked_until timestamptz)",
            """
            CREATE TABLE authz_sessions (
                token_hash bytea PRIMARY KEY, org text NOT NULL, user_id text NOT NULL, email text NOT NULL, csrf text NOT NULL,
                roles text[], expires_at timestamptz NOT NULL
            )
            """,
            """
            CREATE TABLE authz_consents (
                org text NOT NULL, user_id text NOT NULL, client_id text NOT NULL, scopes text[] NOT NULL, agent text NOT NULL,
                granted_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (org, user_id, client_id)
            )
            """,
            """
            CREATE TABLE authz_codes (
                code_hash bytea PRIMARY KEY, family text NOT NULL, client_id text NOT NULL, org text NOT NULL, user_id text NOT NULL,
                agent text NOT NULL, redirect_uri text NOT NULL, redirect_presented boolean NOT NULL, code_challenge text NOT NULL,
                scopes text[] NOT NULL, resource text NOT NULL, roles text[], expires_at timestamptz NOT NULL, used_at timestamptz
            )
            """,
            """
            CREATE TABLE authz_families (
                id text PRIMARY KEY, client_id text NOT NULL, org text NOT NULL, user_id text NOT NULL, agent text NOT NULL,
                scopes text[] NOT NULL, resource text NOT NULL, roles text[], created_at timestamptz NOT NULL DEFAULT now(),
                revoked_at timestamptz
            )
            """,
            """
            CREATE TABLE authz_refresh_tokens (
                token_hash bytea PRIMARY KEY, family text NOT NULL REFERENCES authz_families (id) ON DELETE CASCADE,
                issued_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL, used_at timestamptz
            )
            """,
            "CREATE INDEX authz_families_owner ON authz_families (org, user_id, client_id)",
            "CREATE INDEX authz_refresh_tokens_family ON authz_refresh_tokens (family)",
        ]
    )

    /// Stores a client: a metadata document's record is refreshed in place; other ids are new.
    package func register(_ client: AuthorizationClient) async throws -> AuthorizationClient {
        guard !client.id.isEmpty, client.id.utf8.count <= 2048, !client.redirectURIs.isEmpty else {
            throw ServiceError(.badRequest, "a client needs an id and at least one redirect URI")
        }
        if client.kind == .registered, client.org == nil { throw ServiceError(.badRequest, "a registered client belongs to an org") }
        let rows = try await database.query(
            """
            INSERT INTO authz_clients (id, kind, name, redirect_uris, org) VALUES (\(client.id), \(client.kind.rawValue), \(client.name),
                \(client.redirectURIs), \(client.org))
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, redirect_uris = excluded.redirect_uris, fetched_at = now()
                WHERE authz_clients.kind = 'metadata-document' AND excluded.kind = 'metadata-document'
            RETURNING extract(epoch FROM created_at)::bigint
            """, logger: logger)
        for try await created in rows.decode(Int64.self) {
            var stored = client
            stored.createdAt = created
            return stored
        }
        throw ServiceError(.conflict, "a client with this id exists")
    }

    /// A client; a metadata document's record older than `maxAge` seconds counts as absent (fetch it again).
    package func client(_ id: String, maxAge: Int64? = nil) async throws -> AuthorizationClient {
        for try await (kind, name, uris, org, created, age) in try await database.query(
            """
            SELECT kind, name, redirect_uris, org, extract(epoch FROM created_at)::bigint, extract(epoch FROM now() - fetched_at)::bigint
            FROM authz_clients WHERE id = \(id)
            """, logger: logger
        ).decode((String, String, [String], String?, Int64, Int64).self) {
            let kind = AuthorizationClient.Kind(rawValue: kind) ?? .dynamic
            if kind == .metadataDocument, let maxAge, age > maxAge { break }
            return AuthorizationClient(id: id, kind: kind, name: name, redirectURIs: uris, org: org, createdAt: created)
        }
        throw ServiceError(.notFound, "no client '\(id.prefix(256))'")
    }

    /// An org's registered clients (nil: every client).
    package func list(org: String?) async throws -> [AuthorizationClient] {
        var clients: [AuthorizationClient] = []
        for try await (id, kind, name, uris, clientOrg, created) in try await database.query(
            """
            SELECT id, kind, name, redirect_uris, org, extract(epoch FROM created_at)::bigint FROM authz_clients
            WHERE \(org ?? "") = '' OR org = \(org ?? "") ORDER BY created_at, id
            """, logger: logger
        ).decode((String, String, String, [String], String?, Int64).self) {
            clients.append(
                AuthorizationClient(
                    id: id, kind: AuthorizationClient.Kind(rawValue: kind) ?? .dynamic, name: name, redirectURIs: uris, org: clientOrg,
                    createdAt: created))
        }
        return clients
    }

    /// Removes a client, its codes and refresh tokens (its consents stay, so that their agents can be found).
    package func remove(_ reference: AuthorizationClientReference) async throws {
        // An org admin removes its org's registered client only; nothing of another org's grants is touched.
        try await database.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                "DELETE FROM authz_clients WHERE id = \(reference.id) AND (\(reference.org ?? "") = '' OR org = \(reference.org ?? "")) RETURNING id",
                logger: logger)
            var count = 0
            for try await _ in rows { count += 1 }
            guard count > 0 else {
                throw ServiceError(.notFound, "no client '\(reference.id.prefix(256))'\(reference.org.map { " registered for org \($0)" } ?? "")")
            }
            try await connection.query("DELETE FROM authz_codes WHERE client_id = \(reference.id)", logger: logger)
            // Its consents go too: a client added again (a metadata document is fetched again) asks again.
            try await connection.query(
                "DELETE FROM authz_consents WHERE client_id = \(reference.id) AND (\(reference.org ?? "") = '' OR org = \(reference.org ?? ""))",
                logger: logger)
            try await connection.query(
                "UPDATE authz_families SET revoked_at = now() WHERE client_id = \(reference.id) AND revoked_at IS NULL", logger: logger)
        }
    }

    package func settings(org: String) async throws -> SignInSettings {
        for try await dynamic in try await database.query("SELECT dynamic_clients FROM authz_settings WHERE org = \(org)", logger: logger).decode(
            Bool.self)
        {
            return SignInSettings(org: org, dynamicClients: dynamic)
        }
        return SignInSettings(org: org, dynamicClients: true)
    }

    package func setSettings(_ settings: SignInSettings) async throws -> SignInSettings {
        try await database.query(
            """
            INSERT INTO authz_settings (org, dynamic_clients) VALUES (\(settings.org), \(settings.dynamicClients))
            ON CONFLICT (org) DO UPDATE SET dynamic_clients = excluded.dynamic_clients
            """, logger: logger)
        return settings
    }
}
