import Foundation
import Logging
import Metrics
import ServiceContextModule
import ServiceLifecycle
import Tracing
import WardenContracts
import WardenNATS

/// Serves one endpoint: subscribes in the service's queue group (replicas share the load), decodes
/// each request envelope, runs the handler (up to `concurrency` at once) and replies with an envelope.
/// Handler errors that are not `ServiceError` become `internal` and are logged, never sent.
public struct ServiceResponder<Request: Codable & Sendable, Response: Codable & Sendable>: Service {
    public typealias Handler = @Sendable (Request, RequestContext) async throws -> Response

    public let endpoint: ServiceEndpoint<Request, Response>
    let bus: any MessageBus
    let logger: Logger
    let concurrency: Int
    /// Where handlers run: nil for Swift's pool, or the service's database pool's event loop
    /// (`DatabasePool.executor`) for a hot endpoint whose handler is short: the vault's reads and
    /// policy's decisions. On these two-core machines each hand-over between threads costs tens of
    /// microseconds; on the loop, a request's statements and its reply need none.
    let executor: (any TaskExecutor)?
    let handler: Handler
    /// The handles of the metrics every request records (looked up once, not per request).
    let answered: Counter
    let duration: Metrics.Timer

    public init(
        _ endpoint: ServiceEndpoint<Request, Response>,
        bus: any MessageBus,
        logger: Logger,
        concurrency: Int = 64,
        executor: (any TaskExecutor)? = nil,
        handler: @escaping Handler
    ) {
        self.executor = executor
        self.endpoint = endpoint
        self.bus = bus
        self.logger = logger
        self.concurrency = concurrency
        self.handler = handler
        answered = Counter(label: "warden_nats_handled_total", dimensions: [("subject", endpoint.subject), ("outcome", "ok")])
        duration = Metrics.Timer(label: "warden_nats_handle_duration_seconds", dimensions: [("subject", endpoint.subject)])
    }

    public func run() async throws {
        let subscription = try bus.subscribe(endpoint.subject, queue: endpoint.service.queueGroup)
        logger.debug("serving", metadata: ["nats.subject": "\(endpoint.subject)"])
        // Stop taking requests on graceful shutdown; requests already taken finish first. With an
        // executor, the loop taking requests runs there too, so that a request reaches its handler
        // with one hand-over (NATS's thread to the executor) rather than two.
        try await withGracefulShutdownHandler {
            try await withTaskExecutorPreference(executor) {
                try await serve(subscription)
            }
        } onGracefulShutdown: {
            subscription.unsubscribe()
        }
    }

    private func serve(_ subscription: NATSSubscription) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            var inFlight = 0
            let (done, doneContinuation) = AsyncStream.makeStream(of: Void.self)
            var doneIterator = done.makeAsyncIterator()
            for await message in subscription {
                if inFlight >= concurrency {
                    _ = await doneIterator.next()
                    inFlight -= 1
                }
                inFlight += 1
                group.addTask {
                    if executor != nil, message.payload.count > Self.largeRequestBytes {
                        // Decoding (and acting on) a large request takes long: not on the executor's loop.
                        await withTaskExecutorPreference(globalConcurrentExecutor) { await handle(message) }
                    } else {
                        await handle(message)
                    }
                    doneContinuation.yield()
                }
            }
            doneContinuation.finish()
        }
    }

    /// Decodes, runs the handler and replies. Public for tests that drive a responder without a bus loop.
    public func handle(_ message: NATSMessage) async {
        let context = RequestContext(
            requestID: message.headers[NATSHeaderName.requestID].flatMap { RequestID.isWellFormed($0) ? $0 : nil } ?? RequestID.make(),
            caller: message.headers[NATSHeaderName.caller],
            replyTo: message.replyTo
        )
        // The caller's request id and trace go on in this task: into logs, further requests, spans.
        var serviceContext = ServiceContext.topLevel
        serviceContext.requestID = context.requestID
        let parent = WardenTrace.parent(traceparent: message.headers["traceparent"], tracestate: message.headers["tracestate"], decided: true)
        let started = ContinuousClock.now
        let outcome = await ServiceContext.withValue(serviceContext) {
            await run(message, context, parent: parent)
        }
        if outcome == "ok" {
            answered.increment()
        } else {
            Counter(label: "warden_nats_handled_total", dimensions: [("subject", endpoint.subject), ("outcome", outcome)]).increment()
        }
        duration.record(duration: ContinuousClock.now - started)
    }

    /// The handler's run in a server span, a child of the caller's.
    private func run(_ message: NATSMessage, _ context: RequestContext, parent: SpanContext?) async -> String {
        await WardenTrace.withSpan(endpoint.subject, parent: parent, ofKind: .server) { span in
            span?.annotate { fields in
                fields["messaging.system"] = "nats"
                fields["messaging.destination.name"] = endpoint.subject
            }
            let outcome = await answer(message, context)
            logger.debug("handled", metadata: ["nats.subject": "\(endpoint.subject)", "outcome": "\(outcome)"])
            if outcome != "ok" {
                span?.annotate { $0["warden.error.code"] = outcome }
                if outcome == ServiceError.Code.internal.rawValue { span?.setStatus(SpanStatus(code: .error)) }
            }
            return outcome
        }
    }

    /// Runs the handler and replies; returns the outcome for metrics (`ok` or the error's code).
    private func answer(_ message: NATSMessage, _ context: RequestContext) async -> String {
        let reply: ReplyEnvelope<Response>
        do {
            // Decoded once; only a request that does not decode is read again, for its version.
            let request: RequestEnvelope<Request>
            do {
                request = try EnvelopeCoding.decodeRequest(Request.self, from: message.payload)
            } catch {
                let envelope = try EnvelopeCoding.decode(VersionProbe.self, from: message.payload)
                try Self.check(version: envelope.v)
                throw ServiceError(.badRequest, "request body for \(endpoint.subject) is invalid")
            }
            try Self.check(version: request.v)
            reply = .success(try await handler(request.body, context))
        } catch let error as ServiceError {
            reply = .failure(error)
        } catch is DecodingError {
            reply = .failure(ServiceError(.badRequest, "request for \(endpoint.subject) is not a Warden envelope"))
        } catch {
            logger.error(
                "request failed",
                metadata: ["nats.subject": "\(endpoint.subject)", "request.id": "\(context.requestID)", "error": "\(error)"]
            )
            reply = .failure(ServiceError(.internal, "internal error (request id \(context.requestID))"))
        }
        do {
            let payload = try EnvelopeCoding.reply(reply)
            // No headers: the requester knows its request (the reply comes to its own inbox), and a
            // message without headers is cheaper for libnats to build and for the requester to read.
            try bus.respond(to: message, payload: payload)
        } catch {
            logger.warning("could not send reply", metadata: ["nats.subject": "\(endpoint.subject)", "error": "\(error)"])
        }
        return reply.error?.code.rawValue ?? "ok"
    }
}

extension ServiceResponder {
    /// Requests larger than this are handled on Swift's pool even when the responder has an executor
    /// (a policy question carries the call's arguments: up to NATS's largest message).
    static var largeRequestBytes: Int { 16 * 1024 }

    static func check(version: Int) throws(ServiceError) {
        guard version == wardenEnvelopeVersion else {
            throw ServiceError(.unsupportedVersion, "envelope version \(version) is not supported (this service speaks \(wardenEnvelopeVersion))")
        }
    }
}

/// Who asked, for logs and authorization of service-to-service calls.
public struct RequestContext: Sendable {
    public var requestID: String
    /// `<service>/<instance>` as the caller says (a header: any NATS client can write it).
    public var caller: String?
    /// Where the reply goes. Each service receives replies under `_INBOX.<service>.` and NATS
    /// permissions let no other service subscribe there: a reply to a gateway inbox reaches only a gateway.
    public var replyTo: String?

    public init(requestID: String, caller: String?, replyTo: String? = nil) {
        self.requestID = requestID
        self.caller = caller
        self.replyTo = replyTo
    }

    /// Whether the request comes from `service`: its caller header says so and its reply goes to
    /// that service's inboxes.
    public func isFrom(_ service: WardenServiceName) -> Bool {
        guard let caller, caller == service.rawValue || caller.hasPrefix(service.rawValue + "/") else { return false }
        return replyTo?.hasPrefix("_INBOX.\(service.rawValue).") == true
    }
}

private struct VersionProbe: Decodable {
    var v: Int
}
