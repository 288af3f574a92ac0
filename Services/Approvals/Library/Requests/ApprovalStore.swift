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
    let database: DatabasePool
    let logger: Logger

    package init(database: DatabasePool, logger: Logger) {
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
                -- When the expiry loop next has something to do with it (ApprovalRecord.settlesAt).
                settles_at timestamptz,
                body text NOT NULL
            )
            """,
            // One open request per call: retries and replicas join it.
            "CREATE UNIQUE INDEX requests_one_open_call ON requests (org, call_key) WHERE state IN ('pending', 'approved', 'running')",
            "CREATE INDEX requests_settling ON requests (settles_at) WHERE settles_at IS NOT NULL",
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
            // call of the tool) passes without asking until `until`, while policy still sends it to
            // the same requirement (rule, approvers, count).
            """
            CREATE TABLE remembered (
                org text NOT NULL,
                agent text NOT NULL,
                acting_user text NOT NULL,
                tool text NOT NULL,
                call_key text,
                requirement text NOT NULL,
                until timestamptz NOT NULL,
                request_id text NOT NULL REFERENCES requests (id),
                approver text NOT NULL
            )
            """,
            "CREATE INDEX remembered_lookup ON remembered (org, agent, tool)",
            // Changes for Slack and webhooks, written with the change (an outbox): relayed to the
            // notices stream once it takes them, so none is lost while it is missing or down.
            """
            CREATE TABLE notices (
                id bigserial PRIMARY KEY,
                change_id text NOT NULL,
                payload text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ]
    )

    /// A change made, to announce once the transaction committed.
    package struct Change: Sendable {
        package var id = UUID().uuidString
        package var event: String
        package var actor: String
        package var request: ApprovalRequest

        package var announced: ApprovalChange { ApprovalChange(id: id, event: event, request: request) }
    }

    /// The changes sent to Slack and webhooks (votes and runs stay on the live channels).
    static let noticed: Set<String> = ["opened", "modified", "approved", "rejected", "expired"]

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
            "UPDATE requests SET state = \(record.state.rawValue), settles_at = \(record.settlesAt), body = \(body) WHERE id = \(record.id)",
            logger: logger)
        return try await recordChange(Change(event: event, actor: actor, request: record.request), detail: detail, on: connection)
    }

    /// The change's line in `changes`, and its notice when Slack and webhooks hear of it.
    func recordChange(_ change: Change, detail: String, on connection: PostgresConnection) async throws -> Change {
        let request = change.request
        try await connection.query(
            """
            INSERT INTO changes (request_id, org, actor, event, detail)
            VALUES (\(request.id), \(request.org), \(change.actor), \(change.event), \(detail))
            """, logger: logger)
        if Self.noticed.contains(change.event) {
            let payload = String(decoding: try EnvelopeCoding.encoder().encode(change.announced), as: UTF8.self)
            try await connection.query("INSERT INTO notices (change_id, payload) VALUES (\(change.id), \(payload))", logger: logger)
        }
        return change
    }

    /// Hands waiting notices to `publish` (the notices stream), oldest first, and forgets those it
    /// took; stops at the first it cannot (they wait for the next round). Replicas share the rows.
    package func relayNotices(limit: Int = 100, _ publish: (_ changeID: String, _ payload: Data) async throws -> Void) async throws -> Int {
        try await database.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                "SELECT id, change_id, payload FROM notices ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED", logger: logger)
            var waiting: [(Int64, String, String)] = []
            for try await row in rows.decode((Int64, String, String).self) { waiting.append(row) }
            var relayed: [Int64] = []
            for (id, change, payload) in waiting {
                do { try await publish(change, Data(payload.utf8)) } catch { break }
                relayed.append(id)
            }
            if !relayed.isEmpty { try await connection.query("DELETE FROM notices WHERE id = ANY(\(relayed))", logger: logger) }
            return relayed.count
        }
    }

    /// The locked row of `id` (in `org`, when given).
    func locked(_ id: String, org: String?, on connection: PostgresConnection) async throws -> ApprovalRecord? {
        let rows = try await connection.query(
            "SELECT body FROM requests WHERE id = \(id) AND (\(org)::text IS NULL OR org = \(org)) FOR UPDATE", logger: logger)
        for try await body in rows.decode(String.self) { return try Self.decode(body) }
        return nil
    }

    /// Opens a request for the call, or joins the one open for it (or ended lately: its ending
    /// answers the retry). A remembered approval opens it approved (a new run, recorded like any).
    /// Serialised per call by an advisory lock, so two replicas opening the same call at once open one.
    package func open(_ opening: ApprovalOpening, now: Date = Date()) async throws -> (ApprovalTicket, [Change]) {
        try await database.transaction(logger: logger) { connection in
            try await connection.query(
                "SELECT pg_advisory_xact_lock(hashtext(\("approval:" + opening.org + ":" + opening.callKey)))", logger: logger)
            var changes: [Change] = []
            let newest = try await connection.query(
                """
                SELECT body FROM requests WHERE org = \(opening.org) AND call_key = \(opening.callKey)
                ORDER BY created_at DESC LIMIT 1 FOR UPDATE
                """, logger: logger)
            var latest: ApprovalRecord?
            for try await body in newest.decode(String.self) { latest = try Self.decode(body) }
            if var record = latest, record.expireIfDue(now: now) {
                changes.append(try await write(record, event: record.expiryEvent, actor: "approvals", on: connection))
                latest = record
            }
            let requirement = ApprovalRecord.requirement(
                rule: opening.rule, roles: opening.approverRoles, users: opening.approverUsers, needed: max(1, opening.needed))
            if var open = latest, [.pending, .approved, .running].contains(open.state) {
                // Joined while policy asks the same of it (a call already running is joined anyway);
                // when policy now asks for other approvers, the old request gives way to a new one.
                if open.requirement == requirement || open.state == .running { return (open.ticket, changes) }
                open.state = .expired
                open.reason = "policy now asks for other approvers; a new request was opened"
                open.decidedAt = now
                changes.append(try await write(open, event: "superseded", actor: "approvals", on: connection))
                latest = nil
            }
            // A retry soon after the call ended hears how it ended (even under a remembered approval:
            // a retry must not run a call twice).
            if let latest, latest.answersRetries(now: now) { return (latest.ticket, changes) }
            let remembered = try await connection.query(
                """
                SELECT request_id, approver FROM remembered
                WHERE org = \(opening.org) AND agent = \(opening.agent) AND acting_user = \(opening.user) AND tool = \(opening.tool)
                  AND requirement = \(requirement) AND (call_key IS NULL OR call_key = \(opening.callKey)) AND until > \(now)
                ORDER BY until DESC LIMIT 1
                """, logger: logger)
            var rememberedFrom: (request: String, approver: String)?
            for try await (request, approver) in remembered.decode((String, String).self) { rememberedFrom = (request, approver) }
            var record = ApprovalRecord(
                id: "apr_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20), org: opening.org,
                callKey: opening.callKey, agent: opening.agent, user: opening.user, client: opening.client, server: opening.server,
                tool: opening.tool, arguments: opening.arguments, rule: opening.rule, approverRoles: opening.approverRoles,
                approverUsers: opening.approverUsers, needed: max(1, opening.needed), allowSelf: opening.allowSelf, createdAt: now,
                expiresAt: now.addingTimeInterval(TimeInterval(max(1, opening.expiresSeconds))))
            var event = "opened"
            var detail = opening.tool
            if let rememberedFrom {
                record.state = .approved
                record.decidedAt = now
                record.reason = "approved by \(rememberedFrom.approver) for a while (request \(rememberedFrom.request))"
                event = "approved"
                detail = "remembered from \(rememberedFrom.request)"
            }
            try await connection.query(
                """
                INSERT INTO requests (id, org, call_key, state, created_at, expires_at, settles_at, body)
                VALUES (\(record.id), \(record.org), \(record.callKey), \(record.state.rawValue), \(record.createdAt), \(record.expiresAt),
                        \(record.settlesAt), \(try Self.encode(record)))
                """, logger: logger)
            let actor = rememberedFrom.map { "user:" + $0.approver } ?? "agent:" + record.agent
            changes.append(try await recordChange(Change(event: event, actor: actor, request: record.request), detail: detail, on: connection))
            var ticket = record.ticket
            ticket.remembered = rememberedFrom != nil
            return (ticket, changes)
        }
    }

    /// The request as its gateway sees it: a read (what is due is written by the expiry loop, and
    /// shown here as it will be).
    /// Requests waiting for a decision, in every org (for the metrics; those past their expiry that
    /// the expiry loop has not settled yet count too).
    package func pendingCount() async throws -> Int {
        for try await count in try await database.query("SELECT count(*)::bigint FROM requests WHERE state = 'pending'", logger: logger).decode(
            Int64.self)
        {
            return Int(count)
        }
        return 0
    }

    package func ticket(_ id: String, now: Date = Date()) async throws -> ApprovalTicket {
        let rows = try await database.query("SELECT body FROM requests WHERE id = \(id)", logger: logger)
        for try await body in rows.decode(String.self) {
            var record = try Self.decode(body)
            _ = record.expireIfDue(now: now)
            return record.ticket
        }
        throw ServiceError(.notFound, "no approval request '\(id.prefix(40))'")
    }

    /// Grants the right to run an approved call to one claim id.
    package func claim(_ claim: ApprovalClaim, actor: String, now: Date = Date()) async throws -> (ApprovalTicket, [Change]) {
        var granted = false
        var (ticket, changes) = try await change(claim.id) { record, connection in
            if record.expireIfDue(now: now) { return try await write(record, event: record.expiryEvent, actor: "approvals", on: connection) }
            let wasRunning = record.state == .running
            guard record.claim(claim.claim, now: now) else { return nil }
            granted = true
            return wasRunning ? nil : try await write(record, event: "running", actor: actor, on: connection)
        }
        ticket.claimed = granted
        return (ticket, changes)
    }

    package func finish(_ finish: ApprovalFinish, actor: String, now: Date = Date()) async throws -> (ApprovalTicket, [Change]) {
        try await change(finish.id) { record, connection in
            guard record.finish(finish.claim, outcome: finish.outcome, isError: finish.outcomeIsError, now: now) else { return nil }
            return try await write(record, event: "executed", actor: actor, detail: finish.outcomeIsError ? "error" : "result", on: connection)
        }
    }

    /// Loads `id` locked, lets `apply` change it (returning the change written, if any).
    private func change(
        _ id: String, _ apply: (inout ApprovalRecord, PostgresConnection) async throws -> Change?
    ) async throws -> (ApprovalTicket, [Change]) {
        try await database.transaction(logger: logger) { connection in
            guard var record = try await locked(id, org: nil, on: connection) else {
                throw ServiceError(.notFound, "no approval request '\(id.prefix(40))'")
            }
            let change = try await apply(&record, connection)
            return (record.ticket, change.map { [$0] } ?? [])
        }
    }

    /// An approver's decision; a refusal says why in a `ServiceError` (after what was due, an
    /// expiry, is written). An approval that completes the quorum with `remember` stores the
    /// remembered approval in the same transaction.
    package func decide(_ decision: ApprovalDecision, now: Date = Date()) async throws -> (ApprovalRequest, [Change]) {
        let (decided, changes, refusal): (ApprovalRequest, [Change], ApprovalRecord.Refusal?) = try await database.transaction(logger: logger) {
            connection in
            guard var record = try await locked(decision.id, org: decision.approver.org, on: connection), record.isVisible(to: decision.approver)
            else {
                throw ServiceError(.notFound, "no approval request '\(decision.id.prefix(40))' for you")
            }
            if record.expireIfDue(now: now) {
                let change = try await write(record, event: record.expiryEvent, actor: "approvals", on: connection)
                return (record.request, [change], .decided(record.state))
            }
            let outcome: ApprovalRecord.Outcome
            switch record.decide(decision, now: now) {
            case .success(let decided): outcome = decided
            case .failure(let refusal): return (record.request, [], refusal)
            }
            let actor = "user:" + decision.approver.user
            var detail = decision.reason.map { String($0.prefix(1000)) } ?? ""
            // The difference an approver made is on record: the arguments the call will run with.
            if let arguments = decision.arguments { detail = "modified arguments: " + arguments }
            if let seconds = decision.rememberSeconds {
                detail = "remembered for \(seconds) s" + (decision.rememberAnyArguments == true ? ", any arguments" : "")
            }
            // Decided outside the approvers' API (a Slack click): which account clicked.
            if let via = decision.via { detail = (detail.isEmpty ? "" : detail + "; ") + "via " + via }
            let change = try await write(record, event: outcome.rawValue, actor: actor, detail: detail, on: connection)
            if outcome == .approved, let remember = record.remember {
                try await connection.query(
                    """
                    INSERT INTO remembered (org, agent, acting_user, tool, call_key, requirement, until, request_id, approver)
                    VALUES (\(record.org), \(record.agent), \(record.user), \(record.tool), \(remember.anyArguments ? nil : record.callKey),
                            \(record.requirement),
                            \(now.addingTimeInterval(TimeInterval(remember.seconds))), \(record.id), \(record.rememberedBy ?? decision.approver.user))
                    """, logger: logger)
            }
            return (record.request, [change], nil)
        }
        if let refusal {
            // What was written (an expiry) is still announced.
            throw ApprovalFailure(error: refusal.serviceError, changes: changes)
        }
        return (decided, changes)
    }

    /// A refusal after something was written: the caller announces `changes`, then answers `error`.
    package struct ApprovalFailure: Error {
        package var error: ServiceError
        package var changes: [Change]
    }

    /// What is due: pending requests and unused approvals expire, claims past their lease end with
    /// an unknown outcome, outcomes past the replay window are dropped. Replicas share the work
    /// (rows locked by one are skipped by the others).
    package func settle(now: Date = Date(), limit: Int = 200) async throws -> [Change] {
        try await database.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                SELECT body FROM requests WHERE settles_at <= \(now)
                ORDER BY settles_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            var records: [ApprovalRecord] = []
            for try await body in rows.decode(String.self) { records.append(try Self.decode(body)) }
            var changes: [Change] = []
            for var record in records {
                if record.expireIfDue(now: now) {
                    changes.append(try await write(record, event: record.expiryEvent, actor: "approvals", on: connection))
                } else if record.purgeOutcome(now: now) {
                    _ = try await write(record, event: "purged", actor: "approvals", detail: "the stored result was dropped", on: connection)
                } else {
                    // Nothing due after all (a clock step): look again later.
                    try await connection.query(
                        "UPDATE requests SET settles_at = \(now.addingTimeInterval(60)) WHERE id = \(record.id)", logger: logger)
                }
            }
            try await connection.query("DELETE FROM remembered WHERE until <= \(now)", logger: logger)
            return changes
        }
    }

    /// An approver's view: the org's requests they could decide or did, newest first.
    package func list(_ query: ApprovalQuery) async throws -> [ApprovalRequest] {
        let limit = min(max(query.limit ?? 100, 1), 1000)
        let states = (query.states ?? ApprovalState.allCases).map(\.rawValue)
        let approver = query.approver
        let rows = try await database.query(
            """
            SELECT body FROM requests
            WHERE org = \(approver.org) AND state = ANY(\(states))
              AND (jsonb_exists(body::jsonb -> 'approverRoles', \(approver.role)) OR jsonb_exists(body::jsonb -> 'approverUsers', \(approver.user))
                   OR EXISTS (SELECT 1 FROM jsonb_array_elements(body::jsonb -> 'votes') AS vote WHERE vote ->> 'user' = \(approver.user)))
            ORDER BY created_at DESC LIMIT \(limit)
            """, logger: logger)
        var requests: [ApprovalRequest] = []
        for try await body in rows.decode(String.self) { requests.append(try Self.decode(body).request) }
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
