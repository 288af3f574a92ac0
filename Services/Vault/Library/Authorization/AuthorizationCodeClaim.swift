import Foundation
import NIOCore
import PostgresNIO

/// Claims (marks used) an authorization code in the statement that reads it: one round trip, and of
/// two requests presenting it at once only one gets it. A prepared statement: on every code
/// exchange, PostgreSQL does not plan it again.
struct AuthorizationCodeClaim: PostgresPreparedStatement {
    typealias Row = (family: AuthorizationGrants.Family, redirectURI: String, redirectPresented: Bool, challenge: String, expired: Bool)

    static let sql = """
        UPDATE authz_codes c SET used_at = now() WHERE c.code_hash = $1 AND c.used_at IS NULL
        RETURNING c.family, c.client_id, c.org, c.user_id, c.agent, c.scopes, c.resource, c.roles,
            (SELECT kind FROM authz_clients WHERE id = c.client_id), coalesce((SELECT dynamic_clients FROM authz_settings WHERE org = c.org), true),
            c.redirect_uri, c.redirect_presented, c.code_challenge, c.expires_at < now()
        """
    static let bindingDataTypes: [PostgresDataType] = [.bytea]

    var codeHash: ByteBuffer

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(codeHash)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let columns = try row.decode(
            (String, String, String, String, String, [String], String, [String]?, String?, Bool, String, Bool, String, Bool).self)
        let family = AuthorizationGrants.Family(
            id: columns.0, client: columns.1, org: columns.2, user: columns.3, agent: columns.4, scopes: columns.5, resource: columns.6,
            roles: columns.7, clientKind: columns.8, dynamicClientsAllowed: columns.9)
        return (family, columns.10, columns.11, columns.12, columns.13)
    }
}
