import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// The audit record in the audit service's schema: one hash chain per org (`chain` is the org id,
/// empty for events without an org). Appending takes the chain's advisory lock inside the
/// transaction, so replicas writing at once never fork a chain; an event id already stored is
/// skipped, so a redelivered event is stored once.
package struct AuditStore: Sendable {
    let database: PostgresClient
    let logger: Logger

    package init(database: PostgresClient, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    package static let migration = Migration(
        version: 2,
        name: "audit_records",
        statements: [
            """
            CREATE TABLE records (
                chain text NOT NULL,
                position bigint NOT NULL,
                event_id text NOT NULL UNIQUE,
                time timestamptz NOT NULL,
                action text NOT NULL,
                outcome text NOT NULL,
                agent text,
                name text,
                body text NOT NULL,
                previous_hash text NOT NULL,
                hash text NOT NULL,
                stored_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (chain, position)
            )
            """,
            "CREATE INDEX records_chain_time ON records (chain, time)",
            "CREATE TABLE chain_heads (chain text PRIMARY KEY, position bigint NOT NULL, hash text NOT NULL)",
            // What could not be stored as a record (unreadable, or refused by PostgreSQL), kept as received.
            """
            CREATE TABLE quarantine (
                received_at timestamptz NOT NULL DEFAULT now(),
                stream_sequence bigint NOT NULL UNIQUE,
                payload bytea NOT NULL,
                reason text NOT NULL
            )
            """,
        ]
    )

    /// One event as received: decoded, and its bytes as they will be hashed and kept.
    package struct Incoming: Sendable {
        package var event: AuditEvent
        package var body: String

        package init(event: AuditEvent, body: String) {
            self.event = event
            self.body = body
        }
    }

    /// Appends the events to their chains in one transaction; returns how many were new.
    @discardableResult
    package func append(_ incoming: [Incoming]) async throws -> Int {
        var seen = Set<String>()
        let unique = incoming.filter { seen.insert($0.event.id).inserted }
        let byChain = Dictionary(grouping: unique) { $0.event.org ?? "" }
        let logger = self.logger
        return try await database.transaction(logger: logger) { connection in
            var stored = 0
            for chain in byChain.keys.sorted() {
                let events = byChain[chain] ?? []
                try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\("audit:" + chain)))", logger: logger)
                var existing = Set<String>()
                let ids = events.map(\.event.id)
                for try await id in try await connection.query("SELECT event_id FROM records WHERE event_id = ANY(\(ids))", logger: logger).decode(
                    String.self)
                {
                    existing.insert(id)
                }
                var position: Int64 = 0
                var previous = AuditChain.genesis
                for try await (headPosition, headHash) in try await connection.query(
                    "SELECT position, hash FROM chain_heads WHERE chain = \(chain)", logger: logger
                ).decode((Int64, String).self) {
                    (position, previous) = (headPosition, headHash)
                }
                let fresh = events.filter { !existing.contains($0.event.id) }
                guard !fresh.isEmpty else { continue }
                for item in fresh {
                    position += 1
                    let hash = AuditChain.hash(previous: previous, position: position, body: item.body)
                    let event = item.event
                    try await connection.query(
                        """
                        INSERT INTO records (chain, position, event_id, time, action, outcome, agent, name, body, previous_hash, hash)
                        VALUES (\(chain), \(position), \(event.id), \(event.time), \(Self.column(event.action)), \(event.outcome.rawValue),
                                \(event.call?.agent.map(Self.column)), \(Self.column(Self.name(of: event))), \(item.body), \(previous), \(hash))
                        """, logger: logger)
                    previous = hash
                    stored += 1
                }
                try await connection.query(
                    """
                    INSERT INTO chain_heads (chain, position, hash) VALUES (\(chain), \(position), \(previous))
                    ON CONFLICT (chain) DO UPDATE SET position = excluded.position, hash = excluded.hash
                    """, logger: logger)
            }
            return stored
        }
    }

    /// What an indexed column holds of a text from the event: PostgreSQL text cannot hold NUL.
    static func column(_ text: String) -> String { text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") }

    static func name(of event: AuditEvent) -> String { event.call?.name ?? event.target }

    /// Keeps what could not be stored as a record, for an operator to look at.
    package func quarantine(streamSequence: UInt64, payload: Data, reason: String) async throws {
        try await database.query(
            """
            INSERT INTO quarantine (stream_sequence, payload, reason) VALUES (\(Int64(streamSequence)), \(ByteBuffer(bytes: payload)), \(reason))
            ON CONFLICT (stream_sequence) DO NOTHING
            """, logger: logger)
    }

    package func query(_ query: AuditQuery) async throws -> AuditRecordPage {
        let limit = max(1, min(query.limit, 1_000))
        let rows = try await database.query(
            """
            SELECT position, hash, previous_hash, body FROM records
            WHERE chain = \(query.org ?? "")
              AND (\(query.before)::bigint IS NULL OR position < \(query.before))
              AND (\(query.action)::text IS NULL OR action = \(query.action))
              AND (\(query.agent)::text IS NULL OR agent = \(query.agent))
              AND (\(query.name)::text IS NULL OR name = \(query.name))
              AND (\(query.outcome)::text IS NULL OR outcome = \(query.outcome))
              AND (\(query.since)::timestamptz IS NULL OR time >= \(query.since))
              AND (\(query.until)::timestamptz IS NULL OR time < \(query.until))
            ORDER BY position DESC LIMIT \(limit + 1)
            """, logger: logger)
        var records: [AuditRecord] = []
        for try await (position, hash, previous, body) in rows.decode((Int64, String, String, String).self) {
            guard let event = try? EnvelopeCoding.decoder().decode(AuditEvent.self, from: Data(body.utf8)) else {
                throw ServiceError(.internal, "record \(position) cannot be read (run warden audit verify)")
            }
            records.append(AuditRecord(position: position, hash: hash, previousHash: previous, event: event))
        }
        let next = records.count > limit ? records[limit - 1].position : nil
        return AuditRecordPage(records: Array(records.prefix(limit)), next: next)
    }

    /// Walks the org's whole chain in order, in one snapshot (appends meanwhile are not half seen).
    package func verify(org: String?) async throws -> AuditVerification {
        let chain = org ?? ""
        let logger = self.logger
        return try await database.transaction(logger: logger) { connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            var head: (Int64, String)?
            for try await found in try await connection.query("SELECT position, hash FROM chain_heads WHERE chain = \(chain)", logger: logger)
                .decode((Int64, String).self)
            {
                head = found
            }
            var walk = AuditChain.Walk()
            let rows = try await connection.query(
                """
                SELECT position, event_id, action, outcome, coalesce(agent, ''), coalesce(name, ''), body, previous_hash, hash
                FROM records WHERE chain = \(chain) ORDER BY position
                """, logger: logger)
            for try await (position, eventID, action, outcome, agent, name, body, previous, hash) in rows.decode(
                (Int64, String, String, String, String, String, String, String, String).self)
            {
                let row = AuditChain.Row(
                    position: position, eventID: eventID, action: action, body: body, previousHash: previous, hash: hash, outcome: outcome,
                    agent: agent, name: name)
                if let problem = walk.check(row) {
                    return AuditVerification(org: org, records: walk.count, intact: false, brokenAt: position, problem: problem)
                }
            }
            if let problem = walk.finish(headPosition: head?.0, headHash: head?.1) {
                return AuditVerification(org: org, records: walk.count, intact: false, brokenAt: min(walk.count, head?.0 ?? 0) + 1, problem: problem)
            }
            return AuditVerification(org: org, records: walk.count, intact: true)
        }
    }
}
