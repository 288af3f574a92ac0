import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenMCP
import WardenPolicyEngine
import WardenServiceKit

/// The Streamable HTTP endpoint for MCP clients, handshake era (2025-03-26, 2025-06-18, 2025-11-25):
/// sessions in shared storage; POST answered with JSON, or with an SSE stream as soon as the
/// server sends something before its reply (progress, logging); GET opens the standing stream
/// (`list_changed`) or, with `Last-Event-ID`, resumes an interrupted stream on any replica from
/// the shared event log; DELETE ends a session everywhere.
///
/// The stateless 2026-07-28 era is served on the same path: a request without a session whose
/// header or `_meta` names that era is validated by `StatelessEnvelope` and answered on its own.
/// What a POSTed message goes through is `MCPRequestPipeline`.
///
/// Not here: batching (removed from the protocol).
package struct MCPEndpoint: Sendable {
    package static let path: RouterPath = "/mcp"

    let pipeline: MCPRequestPipeline
    let sessions: any MCPSessionStore
    let events: any SessionEventLog
    let streams: SessionStreams
    let broadcasts: GatewayBroadcasts?
    let authenticator: GatewayAuthenticator?
    let logger: Logger
    /// How long a resumed stream waits for the next event of a call that is still running.
    let resumeIdleTimeout: Duration
    /// Whether a gateway instance is alive (its heartbeats): a resumed stream whose request ran on
    /// a dead instance ends at once with an error instead of waiting for an answer that never comes.
    let isGatewayRunning: @Sendable (String) -> Bool
    /// A comment on idle SSE streams, so proxies keep them open and dead clients are noticed.
    let keepAliveInterval: Duration

    package init(
        registry: DownstreamRegistry,
        calls: InFlightCalls = InFlightCalls(),
        subscriptions: ResourceSubscriptions = ResourceSubscriptions(),
        sessions: any MCPSessionStore,
        events: any SessionEventLog,
        streams: SessionStreams = SessionStreams(),
        broadcasts: GatewayBroadcasts? = nil,
        authenticator: GatewayAuthenticator? = nil,
        policy: PolicyDecisions? = nil,
        pins: ToolPins? = nil,
        limiter: RateLimiter? = nil,
        auditor: CallAuditor? = nil,
        approvals: ApprovalStage? = nil,
        trustedProxies: [IPAddressRange] = [],
        allowedOrigins: Set<String> = [],
        publicURL: String? = nil,
        maximumBodyBytes: Int = 4 << 20,
        resumeIdleTimeout: Duration = .seconds(300),
        keepAliveInterval: Duration = .seconds(15),
        instanceID: String = "local",
        isGatewayRunning: @escaping @Sendable (String) -> Bool = { _ in true },
        logger: Logger
    ) {
        self.pipeline = MCPRequestPipeline(
            authenticate: AuthenticateStage(
                authenticator: authenticator, allowedOrigins: allowedOrigins, publicURL: publicURL ?? authenticator?.publicURL),
            decode: DecodeStage(maximumBodyBytes: maximumBodyBytes),
            session: SessionStage(sessions: sessions, revocations: authenticator?.revocations, logger: logger),
            catalogue: CatalogueStage(registry: registry, policy: policy, pins: pins),
            policy: PolicyStage(
                decisions: policy,
                qualifyResource: { uri, org, user in
                    registry.catalogue(for: org, user: user).serverListing(uri: uri).map { ResourceNamespace.qualify(server: $0, uri: uri) }
                }),
            route: RouteStage(registry: registry),
            exposure: ExposureStage(),
            pins: ToolPinStage(pins: pins),
            approval: approvals ?? ApprovalStage(client: nil, waiters: ApprovalWaiters()),
            limits: LimitStage(limiter: limiter),
            forward: ForwardStage(calls: calls, subscriptions: subscriptions, logger: logger),
            reply: ReplyStage(calls: calls, events: events, instanceID: instanceID, logger: logger),
            clientMessages: broadcasts,
            auditor: auditor,
            clientAddress: ClientAddress(proxies: trustedProxies)
        )
        self.sessions = sessions
        self.events = events
        self.streams = streams
        self.broadcasts = broadcasts
        self.authenticator = authenticator
        self.resumeIdleTimeout = resumeIdleTimeout
        self.keepAliveInterval = keepAliveInterval
        self.isGatewayRunning = isGatewayRunning
        self.logger = logger
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.post(Self.path) { request, context in await pipeline.post(request, peer: context.remoteAddress) }
        router.get(Self.path) { request, context in
            await Self.answer { () async throws(MCPFailure) in try await get(request, peer: context.remoteAddress) }
        }
        router.delete(Self.path) { request, context in
            await Self.answer { () async throws(MCPFailure) in try await delete(request, peer: context.remoteAddress) }
        }
        authenticator?.addRoutes(to: router)
    }

    private static func answer(_ body: () async throws(MCPFailure) -> Response) async -> Response {
        do {
            return try await body()
        } catch {
            return error.response
        }
    }

    // MARK: DELETE

    func delete(_ request: Request, peer: SocketAddress?) async throws(MCPFailure) -> Response {
        let agent = try await pipeline.authenticate.run(request, peer: peer)
        guard let id = request.headers.value(.mcpSessionID), MCPSession.isWellFormedID(id) else {
            throw MCPFailure(.badRequest, .invalidRequest("Mcp-Session-Id header is required"))
        }
        _ = try await pipeline.session.required(request, agent: agent)
        do {
            try await sessions.delete(id)
        } catch {
            throw MCPFailure(.serviceUnavailable, .internalError("sessions are unavailable; try again"))
        }
        broadcasts?.sessionEnded(id)
        return Response(status: .noContent)
    }

    // MARK: GET

    func get(_ request: Request, peer: SocketAddress?) async throws(MCPFailure) -> Response {
        let agent = try await pipeline.authenticate.run(request, peer: peer)
        guard (request.headers.value(.accept) ?? "").contains("text/event-stream") else {
            throw MCPFailure(.notAcceptable, .invalidRequest("GET opens an event stream: Accept must include text/event-stream"))
        }
        if request.headers.value(.mcpSessionID) == nil,
            request.headers.value(.mcpProtocolVersion).map(StatelessEnvelope.supportedVersions.contains) == true
        {
            throw MCPFailure(.methodNotAllowed, .invalidRequest("the 2026-07-28 era has no GET stream"), headers: [.allow: "POST"])
        }
        let session = try await pipeline.session.required(request, agent: agent)
        if let last = request.headers.value(.lastEventID) {
            guard let after = MCPEventID(last) else {
                throw MCPFailure(.badRequest, .invalidRequest("Last-Event-ID \(last.prefix(64)) is not an event id of this gateway"))
            }
            return try await resume(session: session.id, after: after)
        }
        return standingStream(session: session.id, agent: session.agent, org: session.org)
    }

    /// Replays what the client missed on an interrupted stream, then follows it to its end, on
    /// whichever replica the request reached.
    private func resume(session: String, after: MCPEventID) async throws(MCPFailure) -> Response {
        let replay: EventReplay
        do {
            replay = try await events.replay(session: session, after: after, idleTimeout: resumeIdleTimeout, isRunning: isGatewayRunning)
        } catch {
            logger.warning("cannot resume an event stream", metadata: ["error": "\(error)"])
            throw MCPFailure(.serviceUnavailable, .internalError("the event log is unavailable; try again"))
        }
        logger.info("event stream resumed", metadata: ["mcp.stream": "\(after.stream)"])
        return ReplyStage.eventStream { writer in
            try await replay.run { event in
                let data = String(decoding: event.message.json.serialized(), as: UTF8.self)
                try await writer.write(ByteBuffer(bytes: ServerSentEvent(id: event.id?.description, event: "message", data: data).encoded))
            }
        }
    }

    /// The session's standing stream: `list_changed` and other messages that belong to no request.
    /// Its messages and keep-alives are read by child tasks of the response's own writer: the
    /// stream lives exactly as long as the client holds it open.
    private func standingStream(session: String, agent: String?, org: String?) -> Response {
        let (number, messages) = streams.open(session: session, agent: agent, org: org)
        let interval = keepAliveInterval
        let streams = self.streams
        return ReplyStage.eventStream { writer in
            defer { streams.close(number) }
            try await writer.write(ByteBuffer(string: ": stream open\n\n"))
            let (relay, relayed) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingNewest(256))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await message in messages {
                        relayed.yield(ServerSentEvent(event: "message", data: String(decoding: message.json.serialized(), as: UTF8.self)).encoded)
                    }
                    relayed.finish()
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: interval)
                        relayed.yield(Array(": keep-alive\n\n".utf8))
                    }
                }
                defer { group.cancelAll() }
                for await bytes in relay { try await writer.write(ByteBuffer(bytes: bytes)) }
            }
        }
    }
}
