import Crypto
import Foundation
import Logging
import PostgresNIO
import WardenAuditChain
import WardenContracts
import WardenServiceKit

/// The audit record in the audit service's schema: one hash chain per org (`chain` is the org id,
/// empty for events without an org). Appending takes the chain's advisory lock inside the
/// transaction, so replicas writing at once never fork a chain; an event id already stored is
/// skipped, so a redelivered event is stored once.
package struct AuditStore: Sendable {
    let database: DatabasePool
    let logger: Logger

    package init(database: DatabasePool, logger: Logger) {
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

    /// Signed checkpoints (`AuditCheckpoint`), and where a chain starts once retention removed its
    /// leading records (its base: a checkpoint, kept).
    package static let checkpointsMigration = Migration(
        version: 3,
        name: "audit_checkpoints",
        statements: [
            """
            CREATE TABLE checkpoints (
                chain text NOT NULL,
                position bigint NOT NULL,
                hash text NOT NULL,
                signed_at bigint NOT NULL,
                key_id text NOT NULL,
                signature text NOT NULL,
                PRIMARY KEY (chain, position)
            )
            """,
            """
            CREATE TABLE chain_bases (
                chain text PRIMARY KEY,
                position bigint NOT NULL,
                hash text NOT NULL,
                signed_at bigint NOT NULL,
                key_id text NOT NULL,
                signature text NOT NULL
            )
            """,
            // How long an org's records are kept (no row: for good).
            "CREATE TABLE retention (chain text PRIMARY KEY, days int NOT NULL CHECK (days > 0))",
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

    /// Appends the events to their chains in one transaction; returns the records it stored (events
    /// already stored are skipped), by chain.
    @discardableResult
    package func append(_ incoming: [Incoming]) async throws -> [(chain: String, record: AuditChainedRecord)] {
        var seen = Set<String>()
        let unique = incoming.filter { seen.insert($0.event.id).inserted }
        let byChain = Dictionary(grouping: unique) { $0.event.org ?? "" }
        let logger = self.logger
        return try await database.transaction(logger: logger) { connection in
            var stored: [(chain: String, record: AuditChainedRecord)] = []
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
                // One statement for the whole batch: the rows as arrays, unnested.
                var rows = Rows()
                for item in fresh {
                    position += 1
                    let hash = AuditChain.hash(previous: previous, position: position, body: item.body)
                    rows.append(item.event, position: position, body: item.body, previous: previous, hash: hash)
                    stored.append((chain, AuditChainedRecord(position: position, previousHash: previous, hash: hash, body: item.body)))
                    previous = hash
                }
                try await connection.query(
                    """
                    INSERT INTO records (chain, position, event_id, time, action, outcome, agent, name, body, previous_hash, hash)
                    SELECT \(chain), r.position, r.event_id, r.time, r.action, r.outcome, nullif(r.agent, ''), r.name, r.body, r.previous_hash, r.hash
                    FROM unnest(\(rows.positions)::bigint[], \(rows.ids)::text[], \(rows.times)::timestamptz[], \(rows.actions)::text[],
                                \(rows.outcomes)::text[], \(rows.agents)::text[], \(rows.names)::text[], \(rows.bodies)::text[],
                                \(rows.previousHashes)::text[], \(rows.hashes)::text[])
                      AS r (position, event_id, time, action, outcome, agent, name, body, previous_hash, hash)
                    """, logger: logger)
                try await connection.query(
                    """
                    INSERT INTO chain_heads (chain, position, hash) VALUES (\(chain), \(position), \(previous))
                    ON CONFLICT (chain) DO UPDATE SET position = excluded.position, hash = excluded.hash
                    """, logger: logger)
            }
            return stored
        }
    }

    /// A batch of records as column arrays (one INSERT for all of them).
    struct Rows {
        var positions: [Int64] = []
        var ids: [String] = []
        var times: [Date] = []
        var actions: [String] = []
        var outcomes: [String] = []
        var agents: [String] = []
        var names: [String] = []
        var bodies: [String] = []
        var previousHashes: [String] = []
        var hashes: [String] = []

        mutating func append(_ event: AuditEvent, position: Int64, body: String, previous: String, hash: String) {
            positions.append(position)
            ids.append(event.id)
            times.append(event.time)
            actions.append(AuditEvent.column(event.action))
            outcomes.append(event.outcome.rawValue)
            agents.append(event.call?.agent.map(AuditEvent.column) ?? "")
            names.append(AuditEvent.column(event.recordName))
            bodies.append(body)
            previousHashes.append(previous)
            hashes.append(hash)
        }
    }

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
            guard let event = AuditEventReader.stored(body) else {
                throw ServiceError(.internal, "record \(position) cannot be read (run warden audit verify)")
            }
            records.append(AuditRecord(position: position, hash: hash, previousHash: previous, event: event))
        }
        let next = records.count > limit ? records[limit - 1].position : nil
        return AuditRecordPage(records: Array(records.prefix(limit)), next: next)
    }

    /// Walks the org's whole chain in order, in one snapshot (appends meanwhile are not half seen),
    /// checking on the way every checkpoint the vault signed (`signed`: what the vault holds, not
    /// this schema's copy), and starting after the vault's base if retention removed records.
    package func verify(
        org: String?, signed fetchSigned: @escaping @Sendable () async throws -> AuditSignedStatements,
        keys: [String: Curve25519.Signing.PublicKey]
    ) async throws -> AuditVerification {
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
            // Asked once the snapshot is taken: a base signed since is ahead of it (rows up to it
            // are skipped below), never behind it.
            let signed = try await fetchSigned()
            let base = signed.base
            let checkpoints = signed.checkpoints.filter { $0.position > (base?.position ?? 0) }
            var walk = AuditChainWalk(base: base, checkpoints: checkpoints, keys: keys)
            if let problem = walk.checkBase(base) {
                return AuditVerification(org: org, records: 0, intact: false, brokenAt: (base?.position ?? 0) + 1, problem: problem)
            }
            let rows = try await connection.query(
                """
                SELECT position, event_id, action, outcome, coalesce(agent, ''), coalesce(name, ''), body, previous_hash, hash, time
                FROM records WHERE chain = \(chain) ORDER BY position
                """, logger: logger)
            for try await (position, eventID, action, outcome, agent, name, body, previous, hash, time) in rows.decode(
                (Int64, String, String, String, String, String, String, String, String, Date).self)
            {
                // Removed by retention already as far as the vault is concerned (the cut follows).
                if position <= (base?.position ?? 0) { continue }
                let row = AuditChainRow(
                    position: position, eventID: eventID, action: action, body: body, previousHash: previous, hash: hash, outcome: outcome,
                    agent: agent, name: name, time: time)
                if let problem = walk.check(row) {
                    return AuditVerification(org: org, records: walk.count, intact: false, brokenAt: position, problem: problem)
                }
            }
            let walked = (base?.position ?? 0) + walk.count
            if let problem = walk.finish(headPosition: head?.0, headHash: head?.1) {
                return AuditVerification(org: org, records: walk.count, intact: false, brokenAt: min(walked, head?.0 ?? 0) + 1, problem: problem)
            }
            var result = AuditVerification(org: org, records: walk.count, intact: true)
            result.checkpoints = walk.checkpointsVerified
            result.signedThrough = walk.signedThrough
            result.startsAfter = base?.position
            return result
        }
    }

    /// Records in chain order after `after`, with the checkpoints among them.
    package func records(_ request: AuditRecordsRequest) async throws -> AuditChainPage {
        let chain = request.org ?? ""
        let limit = max(1, min(request.limit, 5_000))
        let logger = self.logger
        return try await database.transaction(logger: logger) { connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            var records: [AuditChainedRecord] = []
            for try await (position, previous, hash, body) in try await connection.query(
                """
                SELECT position, previous_hash, hash, body FROM records WHERE chain = \(chain) AND position > \(request.after)
                ORDER BY position LIMIT \(limit + 1)
                """, logger: logger
            ).decode((Int64, String, String, String).self) {
                records.append(AuditChainedRecord(position: position, previousHash: previous, hash: hash, body: body))
            }
            var more = records.count > limit
            records = Array(records.prefix(limit))
            // A page stays well under NATS's largest message.
            var bytes = 0
            if let cut = records.firstIndex(where: {
                bytes += $0.body.utf8.count + 200; return bytes > Self.pageBytes
            }), cut > 0 {
                records = Array(records.prefix(cut))
                more = true
            }
            let checkpoints = try await Self.checkpoints(
                chain: chain, after: request.after, through: records.last?.position ?? request.after, on: connection, logger: logger)
            let base = request.after == 0 ? try await Self.base(chain: chain, on: connection, logger: logger) : nil
            return AuditChainPage(records: records, checkpoints: checkpoints, base: base, next: more ? records.last?.position : nil)
        }
    }

    static func checkpoints(chain: String, after: Int64, through: Int64, on connection: PostgresConnection, logger: Logger) async throws
        -> [AuditCheckpoint]
    {
        var result: [AuditCheckpoint] = []
        for try await (position, hash, signedAt, keyID, signature) in try await connection.query(
            """
            SELECT position, hash, signed_at, key_id, signature FROM checkpoints
            WHERE chain = \(chain) AND position > \(after) AND position <= \(through) ORDER BY position
            """, logger: logger
        ).decode((Int64, String, Int64, String, String).self) {
            result.append(
                AuditCheckpoint(
                    org: chain.isEmpty ? nil : chain, position: position, hash: hash, signedAt: signedAt, keyID: keyID, signature: signature))
        }
        return result
    }

    /// The signed base a chain starts after once retention removed its leading records.
    static func base(chain: String, on connection: PostgresConnection, logger: Logger) async throws -> AuditCheckpoint? {
        for try await (position, hash, signedAt, keyID, signature) in try await connection.query(
            "SELECT position, hash, signed_at, key_id, signature FROM chain_bases WHERE chain = \(chain)", logger: logger
        ).decode((Int64, String, Int64, String, String).self) {
            return AuditCheckpoint(
                kind: .base, org: chain.isEmpty ? nil : chain, position: position, hash: hash, signedAt: signedAt, keyID: keyID,
                signature: signature)
        }
        return nil
    }

    /// Bytes of records per export page at most (NATS carries 8 MiB).
    static let pageBytes = 4 << 20

    /// Every chain's head. Each is offered to the vault on every beat (it answers at once for a head
    /// it signed): this schema's own list of checkpoints is a copy, not what decides.
    package func heads() async throws -> [(chain: String, position: Int64, hash: String)] {
        var heads: [(chain: String, position: Int64, hash: String)] = []
        for try await (chain, position, hash) in try await database.query("SELECT chain, position, hash FROM chain_heads", logger: logger)
            .decode((String, Int64, String).self)
        {
            heads.append((chain, position, hash))
        }
        return heads
    }

    /// The chain's head now (nil: empty).
    package func head(chain: String) async throws -> (position: Int64, hash: String)? {
        for try await (position, hash) in try await database.query("SELECT position, hash FROM chain_heads WHERE chain = \(chain)", logger: logger)
            .decode((Int64, String).self)
        {
            return (position, hash)
        }
        return nil
    }

    /// Keeps a signed checkpoint (replicas signing the same head keep the first).
    package func store(_ checkpoint: AuditCheckpoint) async throws {
        try await database.query(
            """
            INSERT INTO checkpoints (chain, position, hash, signed_at, key_id, signature)
            VALUES (\(checkpoint.org ?? ""), \(checkpoint.position), \(checkpoint.hash), \(checkpoint.signedAt), \(checkpoint.keyID), \(checkpoint.signature))
            ON CONFLICT (chain, position) DO NOTHING
            """, logger: logger)
    }

    /// The checkpoint stored at a position (the first one signed there).
    package func checkpoint(chain: String, position: Int64) async throws -> AuditCheckpoint? {
        try await database.withConnection { connection in
            try await Self.checkpoints(chain: chain, after: position - 1, through: position, on: connection, logger: logger).first
        }
    }

    /// Sets how long a chain's records are kept (nil: for good).
    package func setRetention(_ setting: AuditRetentionSetting) async throws -> AuditRetentionSetting {
        let chain = setting.org ?? ""
        if let days = setting.days {
            guard (1...36_500).contains(days) else { throw ServiceError(.badRequest, "days is 1 to 36500") }
            try await database.query(
                "INSERT INTO retention (chain, days) VALUES (\(chain), \(days)) ON CONFLICT (chain) DO UPDATE SET days = excluded.days",
                logger: logger)
        } else {
            try await database.query("DELETE FROM retention WHERE chain = \(chain)", logger: logger)
        }
        return setting
    }

    /// Where retention may cut each chain with a retention period: the newest checkpoint past the
    /// chain's base below which every record is older than the period (nil: nowhere yet).
    package func retentionCuts(now: Date) async throws -> [(chain: String, position: Int64, hash: String)] {
        var settings: [(String, Int)] = []
        for try await setting in try await database.query("SELECT chain, days FROM retention", logger: logger).decode((String, Int).self) {
            settings.append(setting)
        }
        var cuts: [(chain: String, position: Int64, hash: String)] = []
        for (chain, days) in settings {
            let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
            // The first record still within the period (records are in time order, roughly: the
            // cut never passes it), then the newest checkpoint before it.
            for try await (position, hash) in try await database.query(
                """
                WITH keep AS (
                  SELECT coalesce(min(position), (SELECT position + 1 FROM chain_heads WHERE chain = \(chain)), 1) AS first
                  FROM records WHERE chain = \(chain) AND time >= \(cutoff)
                )
                SELECT c.position, c.hash FROM checkpoints c, keep
                WHERE c.chain = \(chain) AND c.position < keep.first
                  AND c.position > coalesce((SELECT position FROM chain_bases WHERE chain = \(chain)), 0)
                ORDER BY c.position DESC LIMIT 1
                """, logger: logger
            ).decode((Int64, String).self) {
                cuts.append((chain, position, hash))
            }
        }
        return cuts
    }

    /// Removes a chain's records up to its new signed base, and the checkpoints before it; returns
    /// how many records went.
    package func cut(to base: AuditCheckpoint) async throws -> Int {
        let chain = base.org ?? ""
        let logger = self.logger
        return try await database.transaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\("audit:" + chain)))", logger: logger)
            var removed = 0
            for try await count in try await connection.query(
                "WITH gone AS (DELETE FROM records WHERE chain = \(chain) AND position <= \(base.position) RETURNING 1) SELECT count(*)::int FROM gone",
                logger: logger
            ).decode(Int.self) {
                removed = count
            }
            try await connection.query("DELETE FROM checkpoints WHERE chain = \(chain) AND position < \(base.position)", logger: logger)
            try await connection.query(
                """
                INSERT INTO chain_bases (chain, position, hash, signed_at, key_id, signature)
                VALUES (\(chain), \(base.position), \(base.hash), \(base.signedAt), \(base.keyID), \(base.signature))
                ON CONFLICT (chain) DO UPDATE SET position = excluded.position, hash = excluded.hash, signed_at = excluded.signed_at,
                  key_id = excluded.key_id, signature = excluded.signature
                WHERE chain_bases.position < excluded.position
                """, logger: logger)
            return removed
        }
    }
}
