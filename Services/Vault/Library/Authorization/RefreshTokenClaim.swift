import Foundation
import NIOCore
import PostgresNIO
import WardenContracts

/// Claims a refresh token of a client's grant and stores its successor in the same statement, when
/// the grant may go on (a prepared statement: on every refresh, PostgreSQL does not plan it again).
/// The claim matches the client, the org and agent the token names, and the resource when one is
/// asked for, so that a wrong client or resource does not spend the token.
struct RefreshTokenClaim: PostgresPreparedStatement {
    typealias Row = (family: AuthorizationGrants.Family, expired: Bool, revoked: Bool, old: Bool)

    static let sql = """
        WITH claimed AS (
            UPDATE authz_refresh_tokens t SET used_at = now()
            FROM authz_families f LEFT JOIN authz_clients k ON k.id = f.client_id LEFT JOIN authz_settings s ON s.org = f.org
            WHERE t.token_hash = $1 AND t.used_at IS NULL AND f.id = t.family AND f.client_id = $2 AND f.org = $3 AND f.agent = $4
                AND ($5 = '' OR f.resource = $5)
            RETURNING f.id, f.client_id, f.org, f.user_id, f.agent, f.scopes, f.resource, f.roles, k.kind,
                coalesce(s.dynamic_clients, true) AS dynamic, t.expires_at < now() AS expired, f.revoked_at IS NOT NULL AS revoked,
                f.created_at < now() - make_interval(secs => $6) AS old
        ),
        successor AS (
            INSERT INTO authz_refresh_tokens (token_hash, family, expires_at)
            SELECT $7, id, $8 FROM claimed
            WHERE NOT expired AND NOT revoked AND NOT old AND (kind = 'registered' OR (kind IS NOT NULL AND dynamic))
        )
        SELECT * FROM claimed
        """
    static let bindingDataTypes: [PostgresDataType] = [.bytea, .text, .text, .text, .text, .float8, .bytea, .timestamptz]

    var tokenHash: ByteBuffer
    var clientID: String
    var agent: AgentReference
    /// The resource asked for; empty for any.
    var resource: String
    var familyLifetime: Double
    var successorHash: ByteBuffer
    var successorExpiry: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 8)
        bindings.append(tokenHash)
        bindings.append(clientID)
        bindings.append(agent.org)
        bindings.append(agent.agent)
        bindings.append(resource)
        bindings.append(familyLifetime)
        bindings.append(successorHash)
        bindings.append(successorExpiry)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let columns = try row.decode((String, String, String, String, String, [String], String, [String]?, String?, Bool, Bool, Bool, Bool).self)
        let family = AuthorizationGrants.Family(
            id: columns.0, client: columns.1, org: columns.2, user: columns.3, agent: columns.4, scopes: columns.5, resource: columns.6,
            roles: columns.7, clientKind: columns.8, dynamicClientsAllowed: columns.9)
        return (family, columns.10, columns.11, columns.12)
    }
}
