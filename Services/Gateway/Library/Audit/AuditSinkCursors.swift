import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// How far each org's sinks have got, in the gateway's schema: one row per sink, shared by the
/// replicas. A replica takes a due sink for `lease` (`claim`: `FOR UPDATE SKIP LOCKED`, so one
/// replica delivers to a sink at a time and records reach it in order), and gives it back with its
/// new position (`release`); a replica that dies mid-round leaves its lease to run out, and the
/// round is made again by another (at least once: receivers de-duplicate by event id).
package struct AuditSinkCursors: Sendable {
    let database: DatabasePool
    let logger: Logger
    var lease = Duration.seconds(60)

    package init(database: DatabasePool, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    struct Claim: Sendable, Equatable {
        var org: String
        var sink: String
        var cursor: AuditSinkSchedule.Cursor
    }

    /// Up to `limit` sinks due for a round, taken for `lease` by `instance`.
    func claim(instance: String, limit: Int) async throws -> [Claim] {
        let seconds = Int(lease.components.seconds)
        let rows = try await database.query(
            """
            UPDATE audit_sink_cursors SET leased_by = \(instance), leased_until = now() + make_interval(secs => \(seconds))
            WHERE (org, sink) IN (
                SELECT org, sink FROM audit_sink_cursors
                WHERE next_attempt_at <= now() AND (leased_until IS NULL OR leased_until < now())
                ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING org, sink, delivered_through, attempts
            """, logger: logger)
        var claims: [Claim] = []
        for try await (org, sink, through, attempts) in rows.decode((String, String, Int64, Int).self) {
            claims.append(Claim(org: org, sink: sink, cursor: .init(deliveredThrough: through, attempts: attempts)))
        }
        return claims
    }

    /// Gives a sink back after a round, as the schedule says; nothing if the lease was lost meanwhile
    /// (another replica has the sink now).
    func release(_ claim: Claim, _ update: AuditSinkSchedule.Update, instance: String) async throws {
        let delay = Double(update.delay.components.seconds) + Double(update.delay.components.attoseconds) / 1e18
        try await database.query(
            """
            UPDATE audit_sink_cursors SET delivered_through = \(update.cursor.deliveredThrough), attempts = \(update.cursor.attempts),
                next_attempt_at = now() + make_interval(secs => \(delay)), last_error = \(update.lastError),
                last_delivered_at = CASE WHEN \(update.delivered) THEN now() ELSE last_delivered_at END,
                leased_by = NULL, leased_until = NULL
            WHERE org = \(claim.org) AND sink = \(claim.sink) AND leased_by = \(instance)
            """, logger: logger)
    }

    /// Leases this replica holds end at once (a graceful stop): another replica takes over without
    /// waiting for them to run out.
    func releaseAll(instance: String) async throws {
        try await database.query(
            "UPDATE audit_sink_cursors SET leased_by = NULL, leased_until = NULL WHERE leased_by = \(instance)", logger: logger)
    }

    /// Makes the org's rows match its sinks: a new sink starts at `head` (or at the chain's start
    /// when it asked for it), a kept one keeps its position, a removed one's row goes.
    func sync(org: String, sinks: [AuditSink], head: Int64) async throws {
        let ids = sinks.map(\.id)
        try await database.transaction(logger: logger) { connection in
            try await connection.query("DELETE FROM audit_sink_cursors WHERE org = \(org) AND NOT (sink = ANY(\(ids)))", logger: logger)
            for sink in sinks {
                let start: Int64 = sink.from == .start ? 0 : head
                try await connection.query(
                    """
                    INSERT INTO audit_sink_cursors (org, sink, delivered_through) VALUES (\(org), \(sink.id), \(start))
                    ON CONFLICT (org, sink) DO NOTHING
                    """, logger: logger)
            }
        }
    }

    func status(org: String) async throws -> [AuditSinkStatus] {
        let rows = try await database.query(
            """
            SELECT sink, delivered_through, attempts, last_error, last_delivered_at, next_attempt_at FROM audit_sink_cursors
            WHERE org = \(org) ORDER BY sink
            """, logger: logger)
        var status: [AuditSinkStatus] = []
        for try await (sink, through, attempts, error, delivered, next) in rows.decode((String, Int64, Int, String?, Date?, Date).self) {
            status.append(
                AuditSinkStatus(
                    id: sink, deliveredThrough: through, attempts: attempts, lastError: error, lastDeliveredAt: delivered, nextAttemptAt: next))
        }
        return status
    }
}
