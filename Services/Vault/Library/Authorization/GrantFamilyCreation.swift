import Foundation
import NIOCore
import PostgresNIO

/// Stores a new grant (what a code was issued for) with its first refresh token, in one statement
/// prepared once per connection.
struct GrantFamilyCreation: PostgresPreparedStatement {
    typealias Row = Void

    static let sql = """
        WITH family AS (
            INSERT INTO authz_families (id, client_id, org, user_id, agent, scopes, resource, roles)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        )
        INSERT INTO authz_refresh_tokens (token_hash, family, expires_at) VALUES ($9, $1, $10)
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .text, .text, .text, .textArray, .text, .textArray, .bytea, .timestamptz]

    var family: AuthorizationGrants.Family
    var refreshHash: ByteBuffer
    var refreshExpiry: Date

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 10)
        bindings.append(family.id)
        bindings.append(family.client)
        bindings.append(family.org)
        bindings.append(family.user)
        bindings.append(family.agent)
        bindings.append(family.scopes)
        bindings.append(family.resource)
        bindings.append(family.roles)
        bindings.append(refreshHash)
        bindings.append(refreshExpiry)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}
