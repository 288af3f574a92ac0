import Foundation
import Logging
import PostgresNIO
import WardenServiceKit

/// Who refreshes a grant, across every vault replica: a row in `oauth_refresh_leases` that one
/// replica holds for at most `duration` (longer than a refresh takes). Nothing waits on a database
/// lock or holds a connection meanwhile: the others poll for the result.
struct OAuthRefreshLease: Sendable {
    static let duration = 30
    let database: DatabasePool
    let logger: Logger

    /// Takes the lease of the grant at `path` if nobody holds it (or a holder's lease ran out); the
    /// holder's id, or nil.
    func acquire(org: String, path: String) async throws -> String? {
        let holder = UUID().uuidString
        let rows = try await database.query(
            """
            INSERT INTO oauth_refresh_leases (org, path, holder, expires_at)
            VALUES (\(org), \(path), \(holder), now() + make_interval(secs => \(Self.duration)))
            ON CONFLICT (org, path) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
            WHERE oauth_refresh_leases.expires_at < now()
            RETURNING holder
            """, logger: logger)
        return try await rows.collect().isEmpty ? nil : holder
    }

    func release(org: String, path: String, holder: String) async {
        do {
            try await database.query(
                "DELETE FROM oauth_refresh_leases WHERE org = \(org) AND path = \(path) AND holder = \(holder)", logger: logger)
        } catch {
            // It runs out on its own.
            logger.warning("cannot release an oauth refresh lease", metadata: ["org": "\(org)", "error": "\(String(reflecting: error))"])
        }
    }
}
