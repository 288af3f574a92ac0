import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenContracts
import WardenMCP
import WardenNATS
import WardenPolicyEngine

/// Puts every MCP request the pipeline answers on the record without making the request wait: the
/// pipeline hands over what happened (`record`: the event is built and appended under a lock), and
/// this service encodes and publishes it to the audit stream, many at a time, each acknowledged by
/// JetStream and de-duplicated by its id (fixed when recorded, so a retry is the same event). What
/// JetStream cannot take stays in a bounded spool and is retried; when the spool is full the gateway
/// refuses requests (`isAccepting`, fail closed) rather than run them unrecorded. On a graceful stop
/// the spool is flushed first.
package final class CallAuditor: Service, Sendable {
    /// Events held at most while JetStream does not take them (by default).
    static let defaultCapacity = 20_000
    /// Publishes in flight at once.
    static let concurrency = 32
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
        var stopped = false
    }

    let bus: NATSConnection?
    let capacity: Int
    let logger: Logger
    private let spool = Mutex(Spool())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    package init(bus: NATSConnection?, capacity: Int = defaultCapacity, logger: Logger) {
        self.bus = bus
        self.capacity = capacity
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Whether requests may run: false once the spool is full (audit unavailable).
    package var isAccepting: Bool { spool.withLock { $0.events.count < capacity } }

    /// Spools one answered request (never waits).
    func record(_ call: Call) {
        let event = Self.event(call)
        let late = spool.withLock { spool -> Bool in
            spool.events.append(event)
            return spool.stopped
        }
        if late { logger.error("an audit event arrived after the auditor stopped; it is not published", metadata: ["audit.id": "\(event.id)"]) }
        wake.yield()
    }

    package func run() async throws {
        guard bus != nil else { return try await gracefulShutdown() }
        await withGracefulShutdownHandler {
            for await _ in wakeups { await drain() }
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
    }

    /// Publishes what is spooled; what fails for a while is put back and retried after a pause.
    private func drain() async {
        var pause = Duration.milliseconds(100)
        while true {
            let taken = spool.withLock { spool -> [AuditEvent] in
                defer { spool.events.removeAll(keepingCapacity: true) }
                return spool.events
            }
            guard !taken.isEmpty else { return }
            var failed: [AuditEvent] = []
            var index = 0
            while index < taken.count {
                let chunk = Array(taken[index..<min(index + Self.concurrency * 8, taken.count)])
                index += chunk.count
                failed += await publish(chunk)
                if !failed.isEmpty {
                    failed += taken[index...]
                    break
                }
            }
            guard !failed.isEmpty else {
                pause = .milliseconds(100)
                continue
            }
            let spooled = spool.withLock { spool -> Int in
                spool.events.insert(contentsOf: failed, at: 0)
                return spool.events.count
            }
            logger.error("audit events cannot be written to the audit stream; retrying", metadata: ["audit.spooled": "\(spooled)"])
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
            if Task.isCancelled { return }
        }
    }

    /// The events JetStream did not take and may take later. One it can never take (it cannot be
    /// encoded, or it is larger than NATS allows) is logged and dropped, not retried forever.
    private func publish(_ batch: [AuditEvent]) async -> [AuditEvent] {
        guard let bus else { return [] }
        let logger = self.logger
        return await withTaskGroup(of: AuditEvent?.self) { group in
            var failed: [AuditEvent] = []
            var next = 0
            func add() {
                let event = batch[next]
                next += 1
                group.addTask {
                    let payload: Data
                    do { payload = try EnvelopeCoding.encoder().encode(event) } catch {
                        logger.error("an audit event cannot be encoded; it is dropped", metadata: ["audit.id": "\(event.id)"])
                        return nil
                    }
                    guard payload.count < 4 << 20 else {
                        logger.error("an audit event is too large to publish; it is dropped", metadata: ["audit.id": "\(event.id)"])
                        return nil
                    }
                    do {
                        _ = try await bus.jetStreamPublish(AuditStream.subject(of: .gateway), payload: payload, messageID: event.id)
                        return nil
                    } catch {
                        return event
                    }
                }
            }
            while next < min(batch.count, Self.concurrency) { add() }
            for await outcome in group {
                if let outcome { failed.append(outcome) }
                if next < batch.count { add() }
            }
            return failed
        }
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
            time: call.time, service: .gateway, action: "mcp." + call.method.replacingOccurrences(of: "/", with: "."), outcome: outcome,
            org: agent?.org, actor: agent.map { "agent:\($0.agent)" } ?? "anonymous", target: name ?? call.method, detail: detail,
            call: AuditCall(
                method: call.method, name: name, server: call.server, agent: agent?.agent, user: agent?.user, client: agent?.client,
                clientAddress: call.clientAddress, session: call.session, decision: call.decision, result: result, errorCode: code,
                arguments: arguments,
                latencyMicroseconds: Int64(call.latency.components.seconds) * 1_000_000 + call.latency.components.attoseconds / 1_000_000_000_000,
                requestBytes: nil, responseBytes: nil))
    }
}
