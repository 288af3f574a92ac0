import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenMCP
import WardenServiceKit

/// The Streamable HTTP endpoint for MCP clients, handshake era (2025-03-26, 2025-06-18, 2025-11-25):
/// sessions in shared storage; POST answered with JSON, or with an SSE stream as soon as the
/// server sends something before its reply (progress, logging); GET opens the standing stream
/// (`list_changed`) or, with `Last-Event-ID`, resumes an interrupted stream on any replica from
/// the shared event log; DELETE ends a session everywhere.
///
/// The stateless 2026-07-28 era is served on the same path: a request without a session whose
/// header or `_meta` names that era is validated by `StatelessEnvelope` and answered on its own.
///
/// Not here: batching (removed from the protocol), authentication (issue #4; loopback by default).
public struct MCPEndpoint: Sendable {
    public static let path: RouterPath = "/mcp"
    public static let supportedVersions: [String] = ["2025-03-26", "2025-06-18", "2025-11-25"]
    public static let latestVersion = "2025-11-25"

    let dispatcher: MCPDispatcher
    let sessions: any MCPSessionStore
    let events: any SessionEventLog
    let streams: SessionStreams
    let broadcasts: GatewayBroadcasts?
    let authenticator: GatewayAuthenticator?
    let allowedOrigins: Set<String>
    let maximumBodyBytes: Int
    let logger: Logger
    /// How long a resumed stream waits for the next event of a call that is still running.
    let resumeIdleTimeout: Duration
    /// This gateway instance (as its heartbeats name it): recorded with the events it logs.
    let instanceID: String
    /// Whether a gateway instance is alive (its heartbeats): a resumed stream whose request ran on
    /// a dead instance ends at once with an error instead of waiting for an answer that never comes.
    let isGatewayRunning: @Sendable (String) -> Bool
    /// A comment on idle SSE streams, so proxies keep them open and dead clients are noticed.
    let keepAliveInterval: Duration

    public init(
        dispatcher: MCPDispatcher,
        sessions: any MCPSessionStore,
        events: any SessionEventLog,
        streams: SessionStreams = SessionStreams(),
        broadcasts: GatewayBroadcasts? = nil,
        authenticator: GatewayAuthenticator? = nil,
        allowedOrigins: Set<String> = [],
        maximumBodyBytes: Int = 4 << 20,
        resumeIdleTimeout: Duration = .seconds(300),
        keepAliveInterval: Duration = .seconds(15),
        instanceID: String = "local",
        isGatewayRunning: @escaping @Sendable (String) -> Bool = { _ in true },
        logger: Logger
    ) {
        self.dispatcher = dispatcher
        self.sessions = sessions
        self.events = events
        self.streams = streams
        self.broadcasts = broadcasts
        self.authenticator = authenticator
        self.allowedOrigins = allowedOrigins
        self.maximumBodyBytes = maximumBodyBytes
        self.resumeIdleTimeout = resumeIdleTimeout
        self.keepAliveInterval = keepAliveInterval
        self.instanceID = instanceID
        self.isGatewayRunning = isGatewayRunning
        self.logger = logger
    }

    public func addRoutes(to router: Router<WardenRequestContext>) {
        router.post(Self.path) { request, context in await self.authenticated(request, peer: context.remoteAddress) { await self.post(request, agent: $0) } }
        router.get(Self.path) { request, context in await self.authenticated(request, peer: context.remoteAddress) { await self.get(request, agent: $0) } }
        router.delete(Self.path) { request, context in
            await self.authenticated(request, peer: context.remoteAddress) { await self.delete(request, agent: $0) }
        }
        authenticator?.addRoutes(to: router)
    }

    /// The authentication stage: the Origin check, then the bearer token or a trusted proxy's
    /// client certificate (the client's credential is never forwarded downstream).
    func authenticated(_ request: Request, peer: SocketAddress? = nil, _ body: (AuthenticatedAgent?) async -> Response) async -> Response {
        if let refused = checkOrigin(request) { return refused }
        guard let authenticator else { return await body(nil) }
        switch await authenticator.authenticate(request, peer: peer) {
        case .anonymous: return await body(nil)
        case .agent(let agent): return await body(agent)
        case .refused(let response): return response
        }
    }

    // MARK: POST

    func post(_ request: Request, agent: AuthenticatedAgent? = nil) async -> Response {
        guard let contentType = request.headers[.contentType], contentType.lowercased().hasPrefix("application/json") else {
            return Self.error(.unsupportedMediaType, .invalidRequest("Content-Type must be application/json"))
        }
        if let version = request.headers[.mcpProtocolVersion], !Self.supportedVersions.contains(version), !StatelessEnvelope.supportedVersions.contains(version) {
            return Self.error(.badRequest, StatelessEnvelope.unsupportedVersion(version))
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maximumBodyBytes)
        } catch {
            return Self.error(.contentTooLarge, .invalidRequest("the body is larger than \(maximumBodyBytes) bytes"))
        }
        let value: JSONValue
        do {
            value = try JSONParser().parse(body.readableBytesView)
        } catch {
            return Self.error(.badRequest, .parseError(error.description))
        }
        if case .array = value {
            return Self.error(.badRequest, .invalidRequest("JSON-RPC batches are not supported; send one message per request"))
        }
        let message: JSONRPCMessage
        do {
            message = try JSONRPCMessage.parse(value)
        } catch {
            return Self.error(.badRequest, error, id: value["id"].flatMap(Self.id))
        }
        let headers = StatelessEnvelope.Headers(
            protocolVersion: request.headers[.mcpProtocolVersion],
            method: request.headers[.mcpMethod],
            name: request.headers[.mcpName]
        )
        let hasSession = request.headers[.mcpSessionID] != nil
        switch message {
        case .request(let id, "initialize", let params):
            return await initialize(id: id, params: params, agent: agent)
        case .request(let id, let method, let params) where !hasSession && StatelessEnvelope.isStateless(params: params, headers: headers):
            return await stateless(id: id, method: method, params: params, headers: headers, agent: agent)
        case .request(let id, let method, let params):
            guard let session = await session(for: request, agent: agent) else { return sessionProblem(request, id: id) }
            var caller = MCPCaller(protocolVersion: session.protocolVersion, sessionID: session.id, clientName: session.clientName, clientCapabilities: Set(session.clientCapabilities ?? []))
            caller.agent = agent
            return await serve(id: id, method: method, params: params, caller: caller)
        case .notification(_, let params) where !hasSession && StatelessEnvelope.isStateless(params: params, headers: headers):
            // The stateless era defines no client-to-server notifications over HTTP: accepted and dropped.
            return Response(status: .accepted)
        case .notification(let method, let params):
            guard let session = await session(for: request, agent: agent) else { return sessionProblem(request, id: nil) }
            if method == "notifications/cancelled", let requestID = params?["requestId"].flatMap(Self.id) {
                broadcasts?.cancel(InFlightCalls.RequestKey(session: session.id, id: requestID))
            }
            return Response(status: .accepted)
        case .result(let id, _), .error(let id?, _):
            // The client's answer to a server's request (sampling, elicitation), relayed to the
            // replica that waits for it.
            guard let session = await session(for: request, agent: agent) else { return sessionProblem(request, id: nil) }
            broadcasts?.answer(session: session.id, id: id, message)
            return Response(status: .accepted)
        case .error(nil, _):
            guard await session(for: request, agent: agent) != nil else { return sessionProblem(request, id: nil) }
            return Response(status: .accepted)
        }
    }

    /// One self-contained request of the 2026-07-28 era: validated envelope, no session.
    func stateless(id: JSONRPCID, method: String, params: JSONValue?, headers: StatelessEnvelope.Headers, agent: AuthenticatedAgent?) async -> Response {
        let envelope: StatelessEnvelope
        switch StatelessEnvelope.validate(method: method, params: params, headers: headers) {
        case .success(let valid): envelope = valid
        case .failure(let error): return Self.statelessError(error, id: id)
        }
        let outcome: Result<JSONValue, JSONRPCError>
        if method == "server/discover" {
            outcome = .success(.object([
                ("supportedVersions", .array((StatelessEnvelope.supportedVersions + Self.supportedVersions).map { .string($0) })),
                ("capabilities", Self.capabilities),
                ("instructions", .string(Self.instructions)),
            ]))
        } else {
            var caller = MCPCaller(protocolVersion: envelope.protocolVersion, sessionID: nil, clientName: envelope.clientName)
            caller.agent = agent
            return await serve(id: id, method: method, params: params, caller: caller)
        }
        switch outcome {
        case .success(let result): return Self.reply(.result(id: id, result: StatelessEnvelope.stamp(result, method: method, serverInfo: Self.serverInfo)))
        case .failure(let error): return Self.statelessError(error, id: id)
        }
    }

    static func statelessError(_ error: JSONRPCError, id: JSONRPCID) -> Response {
        reply(.error(id: id, error), status: HTTPResponse.Status(code: StatelessEnvelope.httpStatus(for: error.code)))
    }

    static let capabilities: JSONValue = .object([
        ("tools", .object([("listChanged", true)])),
        ("prompts", .object([("listChanged", true)])),
        ("resources", .object([("subscribe", true), ("listChanged", true)])),
        ("completions", .object([])),
    ])
    static let serverInfo: JSONValue = .object([("name", "warden"), ("version", .string(WardenVersion.current))])
    static let instructions = "Tools of every MCP server behind this Warden gateway, named <server>__<tool>."

    func initialize(id: JSONRPCID, params: JSONValue?, agent: AuthenticatedAgent?) async -> Response {
        guard let params, case .string(let requested) = params["protocolVersion"] ?? .null else {
            return Self.reply(.error(id: id, .invalidParams("\"protocolVersion\" is required")), status: .ok)
        }
        let version = Self.supportedVersions.contains(requested) ? requested : Self.latestVersion
        let declared = params["capabilities"]?.objectMembers?.map(\.key) ?? []
        let session = MCPSession(
            id: MCPSession.newID(), protocolVersion: version, clientName: params["clientInfo"]?["name"]?.stringValue, createdAt: Date(),
            clientCapabilities: declared.filter { ["sampling", "elicitation", "roots"].contains($0) }.sorted(),
            agent: agent?.agent, org: agent?.org
        )
        do {
            try await sessions.save(session)
        } catch {
            logger.error("could not store an MCP session", metadata: ["error": "\(error)"])
            return Self.error(.serviceUnavailable, .internalError("sessions are unavailable; try again"), id: id)
        }
        let result: JSONValue = .object([
            ("protocolVersion", .string(version)),
            ("capabilities", Self.capabilities),
            ("serverInfo", Self.serverInfo),
            ("instructions", .string(Self.instructions)),
        ])
        var response = Self.reply(.result(id: id, result: result))
        response.headers[.mcpSessionID] = session.id
        logger.info("MCP session started", metadata: ["mcp.protocol": "\(version)", "mcp.client": "\(session.clientName ?? "?")"])
        return response
    }

    // MARK: DELETE

    func delete(_ request: Request, agent: AuthenticatedAgent? = nil) async -> Response {
        guard let id = request.headers[.mcpSessionID], MCPSession.isWellFormedID(id) else {
            return Self.error(.badRequest, .invalidRequest("Mcp-Session-Id header is required"))
        }
        guard await session(for: request, agent: agent) != nil else { return sessionProblem(request, id: nil) }
        do {
            try await sessions.delete(id)
        } catch {
            return Self.error(.serviceUnavailable, .internalError("sessions are unavailable; try again"))
        }
        broadcasts?.sessionEnded(id)
        return Response(status: .noContent)
    }

    // MARK: Helpers

    /// Browsers send Origin; a page on another site must not drive a local gateway (DNS rebinding).
    /// Requests without Origin (non-browser clients) pass; configured origins pass.
    func checkOrigin(_ request: Request) -> Response? {
        guard let origin = request.headers[.origin] else { return nil }
        if allowedOrigins.contains(origin) { return nil }
        return Self.error(.forbidden, .invalidRequest("Origin \(origin) is not allowed"))
    }

    /// The request's session, if it exists and belongs to the requesting agent (another agent's
    /// session is "not found", never "forbidden": its existence is not revealed). Revoking every
    /// token of an agent also ends the sessions it had opened: a later token starts afresh.
    func session(for request: Request, agent: AuthenticatedAgent?) async -> MCPSession? {
        guard let id = request.headers[.mcpSessionID], MCPSession.isWellFormedID(id) else { return nil }
        guard let session = try? await sessions.load(id) else { return nil }
        guard session.agent == agent?.agent, session.org == agent?.org else { return nil }
        if let owner = session.agent, let revokedAt = authenticator?.revocations?.agentRevokedAt(owner), revokedAt >= Int64(session.createdAt.timeIntervalSince1970) {
            return nil
        }
        return session
    }

    /// 400 without a session id; 404 for an unknown or expired one (the client then re-initializes).
    func sessionProblem(_ request: Request, id: JSONRPCID?) -> Response {
        if request.headers[.mcpSessionID] == nil {
            return Self.error(.badRequest, .invalidRequest("Mcp-Session-Id header is required (send initialize first)"), id: id)
        }
        return Self.error(.notFound, JSONRPCError(code: -32001, message: "Session not found: initialize a new session"), id: id)
    }

    static func id(_ value: JSONValue) -> JSONRPCID? {
        switch value {
        case .string(let text): .string(text)
        case .number(let literal): .number(literal)
        default: nil
        }
    }

    static func reply(_ message: JSONRPCMessage, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: message.json.serialized()))
        )
    }

    static func error(_ status: HTTPResponse.Status, _ error: JSONRPCError, id: JSONRPCID? = nil) -> Response {
        reply(.error(id: id, error), status: status)
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String, allow: String) -> Response {
        var response = error(status, .invalidRequest(text))
        response.headers[.allow] = allow
        return response
    }
}
