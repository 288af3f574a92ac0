import Foundation
import Logging
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// Requests for approval in the approvals schema. A request is one row: the columns it is found by,
/// and the whole `ApprovalRecord` as JSON. Every change loads the row locked (`FOR UPDATE`), applies
/// one event of the record and writes it back in the same transaction, with a line in `changes`
/// naming who did it: replicas and retries never decide, claim or finish a request twice.
package struct ApprovalStore: Sendable {
    let database: PostgresClient
    let logger: Logger

    package init(database: PostgresClient, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    package static let migration = Migration(
        version: 2,
        name: "approval_requests",
        statements: [
            """
            CREATE TABLE requests (
                id text PRIMARY KEY,
                org text NOT NULL,
                call_key text NOT NULL,
                state text NOT NULL,
                created_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL,
                body text NOT NULL
            )
            """,
            // One open request per call: retries and replicas join it.
            "CREATE UNIQUE INDEX requests_one_open_call ON requests (org, call_key) WHERE state IN ('pending', 'approved', 'running')",
            "CREATE INDEX requests_due ON requests (expires_at) WHERE state = 'pending'",
            "CREATE INDEX requests_by_org ON requests (org, created_at DESC)",
            "CREATE INDEX requests_by_call ON requests (org, call_key, created_at DESC)",
            // Every state change with who made it (also sent to the audit record).
            """
            CREATE TABLE changes (
                id bigserial PRIMARY KEY,
                request_id text NOT NULL REFERENCES requests (id),
                org text NOT NULL,
                actor text NOT NULL,
                event text NOT NULL,
                detail text NOT NULL DEFAULT '',
                at timestamptz NOT NULL DEFAULT now()
            )
            """,
            // Approvals remembered for a while: the same agent's same call (or, call_key NULL, any
            // call of the tool) passes without asking until `until`.
            """
            CREATE TABLE remembered (
                org text NOT NULL,
                agent text NOT NULL,
                tool text NOT NULL,
                call_key text,
                until timestamptz NOT NULL,
                request_id text NOT NULL REFERENCES requests (id),
                approver text NOT NULL
            )
            """,
            "CREATE INDEX remembered_lookup ON remembered (org, agent, tool)",
        ]
    )

    /// A change made, to announce once the transaction committed.
    package struct Change: Sendable {
        package var event: String
        package var actor: String
        package var request: ApprovalRequest
    }

    static func decode(_ body: String) throws -> ApprovalRecord {
        try EnvelopeCoding.decoder().decode(ApprovalRecord.self, from: Data(body.utf8))
    }

    static func encode(_ record: ApprovalRecord) throws -> String {
        String(decoding: try EnvelopeCoding.encoder().encode(record), as: UTF8.self)
    }

    func write(_ record: ApprovalRecord, event: String, actor: String, detail: String = "", on connection: PostgresConnection) async throws
        -> Change
    {
        let body = try Self.encode(record)
        try await connection.query(
            "UPDATE requests SET state = \(record.state.rawValue), body = \(body) WHERE id = \(record.id)", logger: logger)
        try await connection.query(
            """
            INSERT INTO changes (request_id, org, actor, event, detail) VALUES (\(record.id), \(record.org), \(actor), \(event), \(detail))
            """, logger: logger)
        return Change(event: event, actor: actor, request: record.request)
    }

    /// The locked row of `id` (in `org`, when given).
    func locked(_ id: String, org: String?, on connection: PostgresConnection) async throws -> ApprovalRecord? {
        let rows = try await connection.query(
            "SELECT body FROM requests WHERE id = \(id) AND (\(org)::text IS NULL OR org = \(org)) FOR UPDATE", logger: logger)
        for try await body in rows.decode(String.self) { return try Self.decode(body) }
        return nil
    }

    /// Opens a request for the call, joins the one open for it, or lets it through when an approval
    /// is remembered. Serialised per call by an advisory lock, so two replicas opening the same call
    /// at once open one request.
    package func open(_ opening: ApprovalOpening, now: Date = Date()) async throws -> (ApprovalTicket, [Change]) {
        try await database.transaction(logger: logger) { connection in
            try await connection.query(
                "SELECT pg_advisory_xact_lock(hashtext(\("approval:" + opening.org + ":" + opening.callKey)))", logger: logger)
            let remembered = try await connection.query(
                """
                SELECT request_id FROM remembered
                WHERE org = \(opening.org) AND agent = \(opening.agent) AND tool = \(opening.tool)
                  AND (call_key IS NULL OR call_key = \(opening.callKey)) AND until > \(now)
                LIMIT 1
                """, logger: logger)
            for try await request in remembered.decode(String.self) {
                return (ApprovalTicket(id: request, state: .approved, remembered: true, expiresAt: now), [])
            }
            var changes: [Change] = []
            let recent = try await connection.query(
                """
                SELECT body FROM requests WHERE org = \(opening.org) AND call_key = \(opening.callKey)
                ORDER BY created_at DESC LIMIT 3 FOR UPDATE
                """, logger: logger)
            var records: [ApprovalRecord] = []
            for try await body in recent.decode(String.self) { records.append(try Self.decode(body)) }
            for var record in records {
                if record.expireIfDue(now: now) {
                    changes.append(try await write(record, event: "expired", actor: "approvals", on: connection))
                }
                if record.answersRetries(now: now) { return (record.ticket, changes) }
            }
            let record = ApprovalRecord(
                id: "apr_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20), org: opening.org,
                callKey: opening.callKey, agent: opening.agent, user: opening.user, client: opening.client, server: opening.server,
                tool: opening.tool,
                arguments: opening.arguments, rule: opening.rule, approverRoles: opening.approverRoles, approverUsers: opening.approverUsers,
                needed: max(1, opening.needed), allowSelf: opening.allowSelf, createdAt: now,
                expiresAt: now.addingTimeInterval(TimeInterval(max(1, opening.expiresSeconds))))
            try await connection.query(
                """
                INSERT INTO requests (id, org, call_key, state, created_at, expires_at, body)
                VALUES (\(record.id), \(record.org), \(record.callKey), \(record.state.rawValue), \(record.createdAt), \(record.expiresAt),
                        \(try Self.encode(record)))
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO changes (request_id, org, actor, event, detail)
                VALUES (\(record.id), \(record.org), \("agent:" + record.agent), 'opened', \(record.tool))
                """, logger: logger)
            changes.append(Change(event: "opened", actor: "agent:" + record.agent, request: record.request))
            return (record.ticket, changes)
        }
    }

    /// The request as its gateway sees it (a pending one past its time is expired first).
    package func ticket(_ id: String, now: Date = Date()) async throws -> (ApprovalTicket, [Change]) {
        try await change(id, org: nil) { record, connection in
            guard record.expireIfDue(now: now) else { return nil }
            return try await write(record, event: "expired", actor: "approvals", on: connection)
        }
    }

    /// Grants the right to run an approved call, once.
    package func claim(_ id: String, actor: String, now: Date = Date()) async throws -> (ApprovalTicket, [Change]) {
        var (ticket, changes) = try await change(id, org: nil) { record, connection in
            guard record.claim(now: now) else { return nil }
            return try await write(record, event: "running", actor: actor, on: connection)
        }
        // Granted to this caller only when this very call moved it to running.
        ticket.claimed = !changes.isEmpty
        return (ticket, changes)
    }

    package func finish(_ finish: ApprovalFinish, actor: String, now: Date = Date()) async throws -> (ApprovalTicket, [Change]) {
        try await change(finish.id, org: nil) { record, connection in
            guard record.finish(outcome: finish.outcome, isError: finish.outcomeIsError, now: now) else { return nil }
            return try await write(record, event: "executed", actor: actor, detail: finish.outcomeIsError ? "error" : "result", on: connection)
        }
    }

    /// Loads `id` locked, lets `apply` change it (returning the change written, if any).
    private func change(
        _ id: String, org: String?, _ apply: @Sendable (inout ApprovalRecord, PostgresConnection) async throws -> Change?
    ) async throws -> (ApprovalTicket, [Change]) {
        try await database.transaction(logger: logger) { connection in
            guard var record = try await locked(id, org: org, on: connection) else {
                throw ServiceError(.notFound, "no approval request '\(id.prefix(40))'")
            }
            let change = try await apply(&record, connection)
            return (record.ticket, change.map { [$0] } ?? [])
        }
    }

    /// An approver's decision; a refusal says why in a `ServiceError`. An approval that completes the
    /// quorum with `remember` stores the remembered approval in the same transaction.
    package func decide(_ decision: ApprovalDecision, now: Date = Date()) async throws -> (ApprovalRequest, [Change]) {
        try await database.transaction(logger: logger) { connection in
            guard var record = try await locked(decision.id, org: decision.approver.org, on: connection), record.isVisible(to: decision.approver)
            else {
                throw ServiceError(.notFound, "no approval request '\(decision.id.prefix(40))' for you")
            }
            if record.expireIfDue(now: now) {
                _ = try await write(record, event: "expired", actor: "approvals", on: connection)
                throw ApprovalRecord.Refusal.decided(.expired).serviceError
            }
            let outcome: ApprovalRecord.Outcome
            switch record.decide(decision, now: now) {
            case .success(let decided): outcome = decided
            case .failure(let refusal): throw refusal.serviceError
            }
            let actor = "user:" + decision.approver.user
            var detail = decision.reason.map { String($0.prefix(1000)) } ?? ""
            if decision.arguments != nil { detail = "modified arguments" }
            let change = try await write(record, event: outcome.rawValue, actor: actor, detail: detail, on: connection)
            if outcome == .approved, let remember = record.remember {
                try await connection.query(
                    """
                    INSERT INTO remembered (org, agent, tool, call_key, until, request_id, approver)
                    VALUES (\(record.org), \(record.agent), \(record.tool), \(remember.anyArguments ? nil : record.callKey),
                            \(now.addingTimeInterval(TimeInterval(remember.seconds))), \(record.id), \(decision.approver.user))
                    """, logger: logger)
            }
            return (record.request, [change])
        }
    }

    /// Pending requests whose time has passed become expired; replicas share the work (rows locked
    /// by one are skipped by the others).
    package func expireDue(now: Date = Date(), limit: Int = 200) async throws -> [Change] {
        try await database.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT body FROM requests WHERE state = 'pending' AND expires_at <= \(now)
                ORDER BY expires_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            var records: [ApprovalRecord] = []
            for try await body in rows.decode(String.self) { records.append(try Self.decode(body)) }
            var changes: [Change] = []
            for var record in records where record.expireIfDue(now: now) {
                changes.append(try await write(record, event: "expired", actor: "approvals", on: connection))
            }
            return changes
        }
    }

    /// An approver's view: the org's requests they could decide or did, newest first.
    package func list(_ query: ApprovalQuery, now: Date = Date()) async throws -> [ApprovalRequest] {
        let limit = min(max(query.limit ?? 100, 1), 1000)
        let states = (query.states ?? ApprovalState.allCases).map(\.rawValue)
        let rows = try await database.query(
            """
            SELECT body FROM requests WHERE org = \(query.approver.org) AND state = ANY(\(states))
            ORDER BY created_at DESC LIMIT \(limit * 4)
            """, logger: logger)
        var requests: [ApprovalRequest] = []
        for try await body in rows.decode(String.self) {
            let record = try Self.decode(body)
            if record.isVisible(to: query.approver) { requests.append(record.request) }
            if requests.count == limit { break }
        }
        return requests
    }

    package func get(_ lookup: ApprovalLookup) async throws -> ApprovalRequest {
        let rows = try await database.query(
            "SELECT body FROM requests WHERE id = \(lookup.id) AND org = \(lookup.approver.org)", logger: logger)
        for try await body in rows.decode(String.self) {
            let record = try Self.decode(body)
            if record.isVisible(to: lookup.approver) { return record.request }
        }
        throw ServiceError(.notFound, "no approval request '\(lookup.id.prefix(40))' for you")
    }
}
