import Foundation
import NIOCore
import PostgresNIO

/// A secret version with what a read needs to decide and open it, as a prepared statement: the read
/// path is one round trip that PostgreSQL has already planned.
struct SecretVersionQuery: PostgresPreparedStatement {
    typealias Row = (version: Int, ciphertext: ByteBuffer?, wrappedKey: ByteBuffer?, orgKeyVersion: Int?, deletedAt: Date?, expiresAt: Date?)

    static let sql = """
        SELECT v.version, v.ciphertext, v.wrapped_data_key, v.org_key_version, s.deleted_at, s.expires_at
        FROM secrets s JOIN secret_versions v ON v.org = s.org AND v.path = s.path
        WHERE s.org = $1 AND s.path = $2 AND v.version = coalesce($3, s.current_version)
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .int8]

    var org: String
    var path: String
    var version: Int?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(org)
        bindings.append(path)
        bindings.append(version)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (version, ciphertext, wrappedKey, orgKeyVersion, deletedAt, expiresAt) = try row.decode(
            (Int, ByteBuffer?, ByteBuffer?, Int?, Date?, Date?).self)
        return (version, ciphertext, wrappedKey, orgKeyVersion, deletedAt, expiresAt)
    }
}
