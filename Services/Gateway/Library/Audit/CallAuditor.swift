import Crypto
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenMCP
import WardenNATS
import WardenPolicyEngine
import WardenServiceKit

/// Puts every MCP request the pipeline answers on the record without making the request wait: the
/// pipeline hands over what happened (`record`: the event is built and appended under a lock), and
/// this service encodes what is spooled and publishes it to the audit stream in batches (one
/// JetStream message carries up to `batchEvents` events, one JSON object a line: one stored message
/// and one acknowledgement per batch, not per call), each batch acknowledged by JetStream and
/// de-duplicated by a digest of its events' ids (event ids are fixed when recorded, and the audit
/// service stores an event id once, so a retried batch stores nothing twice). What
/// JetStream cannot take stays in a bounded spool and is retried; when the spool is full the gateway
/// refuses requests (`isAccepting`, fail closed) rather than run them unrecorded, except an org's
/// agents' requests when the org chose to continue (`AuditContinuitySettings`): those run, and once
/// the stream takes events again each such org's record gets an `audit.unrecorded` event saying how
/// many requests ran unrecorded and when. On a graceful stop the spool is flushed first.
package final class CallAuditor: Service, Sendable {
    /// Events held at most while JetStream does not take them (by default).
    static let defaultCapacity = 20_000
    /// How long a recorded event waits for others before it is published: what a crash of the
    /// gateway can lose beyond events JetStream did not take (which wait in the spool).
    static let flushInterval = Duration.milliseconds(20)
    /// Batches in flight at once.
    static let concurrency = 4
    /// Events per JetStream message at most, and bytes (well under NATS's `max_payload`).
    package static let batchEvents = 256
    static let batchBytes = 512 << 10
    /// Arguments kept per event at most (the rest is cut, and said so).
    static let maximumArgumentBytes = 64 << 10

    /// What the pipeline knows of one request when it is answered.
    package struct Call: Sendable {
        var method: String
        var params: JSONValue?
        var agent: AuthenticatedAgent?
        var clientAddress: String?
        var session: String?
        var server: String?
        /// The credentials the server is given (references, never values).
        var credentials: [String] = []
        /// nil: nothing was decided (a listing) or nothing was allowed.
        var decision: String?
        /// Arguments kept only once a rule allowed the call, with its `redact` paths replaced.
        var redact: [JSONPath]?
        var result: Result<JSONValue, JSONRPCError>
        var latency: Duration
        var time: Date
    }

    struct Spool {
        var events: [AuditEvent] = []
        /// Taken by the publisher and not yet acknowledged: they count against the capacity too.
        var publishing = 0
        /// Requests admitted and not yet recorded: each holds a place, so that requests running at
        /// once cannot take the spool past its capacity.
        var admitted = 0
        var stopped = false
        /// Per org: requests that ran unrecorded while the spool was full (the org chose to continue).
        var unrecorded: [String: Gap] = [:]
        /// The audit stream did not take the last batches: audit is unavailable.
        var failing = false
        var held: Int { events.count + publishing + admitted }
    }

    /// Requests of one org that ran unrecorded, and when.
    struct Gap: Equatable {
        var count: Int
        var first: Date
        var last: Date
    }

    /// What a request admitted by `admit(org:)` may do.
    enum Admission: Equatable {
        /// It runs and is recorded (it holds a place in the spool).
        case recorded
        /// It runs unrecorded: the spool is full and its org chose to continue.
        case unrecorded
        /// It does not run: audit is unavailable.
        case refused
    }

    let bus: NATSConnection?
    let capacity: Int
    let health: HealthState?
    /// Whether an org chose to continue unrecorded when the spool is full (nil: none may).
    let continues: (@Sendable (String) -> Bool)?
    /// Whether any org did: then a full spool keeps the gateway ready (its requests must reach it).
    let anyContinues: (@Sendable () -> Bool)?
    let logger: Logger
    private let spool = Mutex(Spool())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    /// Made once: making a metric looks it up in the registry, which cost about 16,000
    /// instructions a published batch (callgrind, `BENCHMARKS.md`).
    private let publishDuration = Timer(label: "warden_audit_publish_duration_seconds")
    private let eventsStored = Counter(label: "warden_audit_published_events_total", dimensions: [("outcome", "stored")])
    private let eventsFailed = Counter(label: "warden_audit_published_events_total", dimensions: [("outcome", "failed")])

    package init(
        bus: NATSConnection?, capacity: Int = defaultCapacity, health: HealthState? = nil, continues: (@Sendable (String) -> Bool)? = nil,
        anyContinues: (@Sendable () -> Bool)? = nil, logger: Logger
    ) {
        self.bus = bus
        self.capacity = capacity
        self.health = health
        self.continues = continues
        self.anyContinues = anyContinues
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// `WARDEN_AUDIT_SPOOL_EVENTS`: events held at most while JetStream does not take them.
    package static func capacity(_ environment: [String: String]) throws(ConfigurationError) -> Int {
        try ServiceConfiguration.number(
            environment, "WARDEN_AUDIT_SPOOL_EVENTS", key: "audit.spool.events", range: 1...10_000_000, unit: "events", default: defaultCapacity)
    }

    /// Whether requests may run: false once the spool is full (audit unavailable).
    /// Events held: spooled, being published, or admitted and not yet recorded.
    package var held: Int { spool.withLock { $0.held } }

    package var isAccepting: Bool { spool.withLock { $0.held < capacity } }

    /// Takes a place in the spool for a request about to run (false: full, refuse it). Every place
    /// taken is given back by `record` (the request's event then holds it).
    func admit() -> Bool {
        spool.withLock { spool in
            guard spool.held < capacity else { return false }
            spool.admitted += 1
            return true
        }
    }

    /// Takes a place for an org's request about to run; when the spool is full because the audit
    /// stream does not take events, the request runs unrecorded only if its org chose to continue (an
    /// agent without an org never does). A spool full of requests still running while the stream
    /// works refuses everyone alike.
    func admit(org: String?) -> Admission {
        if admit() { return .recorded }
        guard let org, let continues, spool.withLock({ $0.failing }), continues(org) else { return .refused }
        return .unrecorded
    }

    /// Spools one answered request admitted by `admit` (never waits).
    func record(_ call: Call) { record(Self.event(call)) }

    /// Counts a request of `org` that ran unrecorded (`admit(org:)` said so); the gap goes on the
    /// org's record once the audit stream takes events again.
    func ranUnrecorded(org: String, at time: Date) {
        let opened = spool.withLock { spool -> Bool in
            if var gap = spool.unrecorded[org] {
                gap.count += 1
                gap.last = max(gap.last, time)
                spool.unrecorded[org] = gap
                return false
            }
            // Bounded: orgs are few; past this, further orgs' gaps are only logged and counted.
            guard spool.unrecorded.count < Self.maximumGaps else { return false }
            spool.unrecorded[org] = Gap(count: 1, first: time, last: time)
            return true
        }
        Counter(label: "warden_audit_unrecorded_requests_total").increment()
        // The stream may have come back while the request ran: the gap must not wait for another event.
        wake.yield()
        if opened {
            logger.error(
                "audit is unavailable and the org chose to continue: its requests run unrecorded until the audit stream returns",
                metadata: ["org": "\(org)"])
        }
    }

    static let maximumGaps = 10_000

    /// Whether the audit stream takes events, as the publisher last found.
    func streamTakesEvents(_ takes: Bool) { spool.withLock { $0.failing = !takes } }

    /// The `audit.unrecorded` events of the gaps counted so far, which are forgotten.
    func takeGaps() -> [AuditEvent] {
        let gaps = spool.withLock { spool -> [String: Gap] in
            defer { spool.unrecorded.removeAll() }
            return spool.unrecorded
        }
        return gaps.sorted { $0.key < $1.key }.map { org, gap in Self.gapEvent(org: org, gap) }
    }

    static func gapEvent(org: String, _ gap: Gap) -> AuditEvent {
        let format = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        return AuditEvent(
            time: gap.first, service: .gateway, action: "audit.unrecorded", outcome: .failure, org: org, actor: "gateway", target: "audit",
            detail:
                "\(gap.count) request\(gap.count == 1 ? "" : "s") ran unrecorded from \(gap.first.formatted(format)) to \(gap.last.formatted(format)): "
                + "the audit stream did not take events and the org chose to continue")
    }

    /// Spools the event of a request admitted by `admit`, built elsewhere in the gateway (admin
    /// changes; never waits).
    func record(_ event: AuditEvent) {
        var event = event
        if event.requestID == nil { event.requestID = RequestID.current }
        let (late, first) = spool.withLock { spool -> (Bool, Bool) in
            spool.events.append(event)
            spool.admitted = max(0, spool.admitted - 1)
            return (spool.stopped, spool.events.count == 1)
        }
        if late { logger.error("an audit event arrived after the auditor stopped; it is not published", metadata: ["audit.id": "\(event.id)"]) }
        // The publisher takes every event spooled when it drains: it needs waking only for the
        // first one after a drain (a wake-up per call cost more than the rest of recording it).
        if first { wake.yield() }
    }

    package func run() async throws {
        guard bus != nil else { return try await gracefulShutdown() }
        await withGracefulShutdownHandler {
            for await _ in wakeups {
                // Events recorded meanwhile travel together: under load and one call at a time alike,
                // a JetStream message (and an audit transaction) carries many events, not one.
                try? await Task.sleep(for: Self.flushInterval)
                await drain()
            }
        } onGracefulShutdown: {
            self.wake.finish()
        }
        // Stopping: what is left goes out before the process ends.
        await drain()
        let lost = spool.withLock { spool -> Int in
            spool.stopped = true
            return spool.events.count
        }
        if lost > 0 { logger.error("audit events could not be published before the gateway stopped", metadata: ["audit.lost": "\(lost)"]) }
        // Gaps not yet on record (the stream is still down): the log is all that is left of them.
        for gap in takeGaps() {
            logger.error(
                "requests ran unrecorded and the gateway stopped before the gap could be put on record",
                metadata: ["org": "\(gap.org ?? "")", "detail": "\(gap.detail)"])
        }
    }

    /// Publishes what is spooled; what fails for a while is put back and retried after a pause.
    private func drain() async {
        var pause = Duration.milliseconds(100)
        while true {
            let taken = spool.withLock { spool -> [AuditEvent] in
                defer {
                    spool.publishing = spool.events.count
                    spool.events.removeAll(keepingCapacity: true)
                }
                return spool.events
            }
            guard !taken.isEmpty else {
                // Gaps counted since the last publish (a request that ran unrecorded may end after
                // the stream came back) go out too; if the stream fails again they wait in the spool.
                let gaps = takeGaps()
                guard !gaps.isEmpty else { return }
                spool.withLock { $0.events.append(contentsOf: gaps) }
                continue
            }
            let failed = await publish(Self.batches(of: taken, logger: logger))
            guard !failed.isEmpty else {
                // The stream takes events again: the gaps of orgs that continued go on their record.
                let gaps = takeGaps()
                spool.withLock { spool in
                    spool.publishing = 0
                    spool.events.append(contentsOf: gaps)
                }
                streamTakesEvents(true)
                if pause > .milliseconds(100) { health?.set("audit", ok: true) }
                pause = .milliseconds(100)
                continue
            }
            let spooled = spool.withLock { spool -> Int in
                spool.events.insert(contentsOf: failed, at: 0)
                spool.publishing = 0
                return spool.events.count
            }
            streamTakesEvents(false)
            logger.error("audit events cannot be written to the audit stream; retrying", metadata: ["audit.spooled": "\(spooled)"])
            // /readyz says so; this gateway is not ready once it refuses requests (the spool is full),
            // unless an org chose to continue: its requests must still reach a gateway.
            let full = spooled >= capacity
            let continuing = full && (anyContinues?() ?? false)
            health?.set(
                "audit", ok: !full || continuing,
                detail:
                    "the audit stream does not take events: \(spooled) of \(capacity) spooled"
                    + (full
                        ? (continuing ? "; requests are refused except for orgs that chose to continue unrecorded" : "; requests are refused") : ""))
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
            if Task.isCancelled { return }
        }
    }

    /// One batch: the events and their encoding, one JSON object a line.
    package struct Batch {
        package var events: [AuditEvent] = []
        package var payload = Data()

        /// Names exactly these events: a failed batch is batched again with others, and a message id
        /// JetStream saw before must not make it drop the new ones as a duplicate.
        package var messageID: String {
            var hasher = SHA256()
            for event in events {
                // In place: a `Data` an id and an array a separator were two allocations an event.
                var id = event.id
                id.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
                withUnsafeBytes(of: UInt8(0x0A)) { hasher.update(bufferPointer: $0) }
            }
            return LowercaseHex.string(hasher.finalize())
        }
    }

    /// Encodes the events (`AuditJSON`) and groups them into batches of at most `batchEvents` events
    /// and `batchBytes` bytes (an event larger than that travels alone). One larger than NATS allows
    /// is logged and dropped, not retried forever.
    package static func batches(of events: [AuditEvent], logger: Logger) -> [Batch] {
        var batches: [Batch] = []
        var current = Batch()
        var payload: [UInt8] = []
        var line: [UInt8] = []
        for event in events {
            line.removeAll(keepingCapacity: true)
            AuditJSON.write(event, to: &line)
            guard line.count < maximumEventBytes else {
                logger.error("an audit event is too large to publish; it is dropped", metadata: ["audit.id": "\(event.id)"])
                continue
            }
            if !current.events.isEmpty, current.events.count >= batchEvents || payload.count + line.count + 1 > batchBytes {
                current.payload = Data(payload)
                batches.append(current)
                current = Batch()
                payload.removeAll(keepingCapacity: true)
            }
            if !current.events.isEmpty { payload.append(0x0A) }
            payload.append(contentsOf: line)
            current.events.append(event)
        }
        if !current.events.isEmpty {
            current.payload = Data(payload)
            batches.append(current)
        }
        return batches
    }

    /// An event is at most this large (NATS's `max_payload` is 8 MiB in our configuration).
    static let maximumEventBytes = 4 << 20

    /// The events of the batches JetStream did not take (they may be taken later).
    private func publish(_ batches: [Batch]) async -> [AuditEvent] {
        guard let bus else { return [] }
        // The tasks below capture the metrics, not the auditor.
        let (publishDuration, eventsStored, eventsFailed) = (self.publishDuration, self.eventsStored, self.eventsFailed)
        return await withTaskGroup(of: [AuditEvent].self) { group in
            var failed: [AuditEvent] = []
            var next = 0
            func add() {
                let batch = batches[next]
                next += 1
                group.addTask {
                    let started = ContinuousClock.now
                    do {
                        _ = try await bus.jetStreamPublish(AuditStream.subject(of: .gateway), payload: batch.payload, messageID: batch.messageID)
                        publishDuration.record(duration: ContinuousClock.now - started)
                        eventsStored.increment(by: batch.events.count)
                        return []
                    } catch {
                        eventsFailed.increment(by: batch.events.count)
                        return batch.events
                    }
                }
            }
            while next < min(batches.count, Self.concurrency) { add() }
            for await outcome in group {
                failed += outcome
                if next < batches.count { add() }
            }
            return failed
        }
    }

    /// `mcp.tools.call` for `tools/call` (Foundation's `replacingOccurrences` cost 7 µs a call).
    static func action(_ method: String) -> String {
        "mcp." + String(decoding: method.utf8.map { $0 == UInt8(ascii: "/") ? UInt8(ascii: ".") : $0 }, as: UTF8.self)
    }

    /// The audit event of a request: who, what, how it was decided, how it went.
    static func event(_ call: Call) -> AuditEvent {
        let agent = call.agent
        let name = (call.params?["name"] ?? call.params?["uri"])?.stringValue
        var arguments: String?
        if let redact = call.redact, var value = call.params?["arguments"] {
            for path in redact { value = path.replacing(in: value, with: .string("[redacted]")) }
            let text = String(decoding: value.serialized(), as: UTF8.self)
            arguments =
                text.utf8.count <= maximumArgumentBytes
                ? text : String(decoding: Array(text.utf8.prefix(maximumArgumentBytes)), as: UTF8.self) + "…[cut]"
        }
        let (result, code): (String, Int?) =
            switch call.result {
            case .success(let value): (value["isError"] == .bool(true) ? "tool_error" : "success", nil)
            case .failure(let error): ("protocol_error", error.code)
            }
        let denied = [JSONRPCError.Code.policyDenied, JSONRPCError.Code.approvalRequired, JSONRPCError.Code.rateLimited].contains(code ?? 0)
        let outcome: AuditEvent.Outcome = denied ? .denied : result == "success" ? .success : .failure
        // A server's error message may repeat what the policy redacts: then only its code is kept.
        let detail =
            switch call.result {
            case .success: result
            case .failure(let error) where call.redact?.isEmpty ?? true: "\(error.code): \(String(error.message.prefix(500)))"
            case .failure(let error): "\(error.code)"
            }
        return AuditEvent(
            time: call.time, service: .gateway, action: action(call.method), outcome: outcome,
            org: agent?.org, actor: agent.map { "agent:\($0.agent)" } ?? "anonymous", target: name ?? call.method, detail: detail,
            call: AuditCall(
                method: call.method, name: name, server: call.server, agent: agent?.agent, user: agent?.user, client: agent?.client,
                clientAddress: call.clientAddress, session: call.session, decision: call.decision, result: result, errorCode: code,
                arguments: arguments, credentials: call.credentials.isEmpty ? nil : call.credentials,
                latencyMicroseconds: Int64(call.latency.components.seconds) * 1_000_000 + call.latency.components.attoseconds / 1_000_000_000_000,
                requestBytes: nil, responseBytes: nil))
    }
}
