import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import WardenMCP
import WardenServiceKit

/// Stage 3: the request's protocol era and session. `initialize` opens a session (answered here);
/// a request without a session that names the 2026-07-28 era has its envelope validated
/// (`server/discover` is answered here); any other request needs a session of the requesting agent.
struct SessionStage: Sendable {
    let sessions: any MCPSessionStore
    let revocations: RevocationList?
    let logger: Logger

    enum Outcome: Sendable {
        /// The gateway answered the request itself.
        case answered(Response)
        /// Who asks, for the stages that follow.
        case caller(MCPCaller)
    }

    func run(_ request: Request, id: JSONRPCID, method: String, params: JSONValue?, agent: AuthenticatedAgent?) async throws(MCPFailure) -> Outcome {
        if method == "initialize" { return .answered(try await open(id: id, params: params, agent: agent)) }
        let headers = StatelessEnvelope.Headers(
            protocolVersion: request.headers.value(.mcpProtocolVersion), method: request.headers.value(.mcpMethod),
            name: request.headers.value(.mcpName)
        )
        if request.headers.value(.mcpSessionID) == nil, StatelessEnvelope.isStateless(params: params, headers: headers) {
            let envelope: StatelessEnvelope
            switch StatelessEnvelope.validate(method: method, params: params, headers: headers) {
            case .success(let valid): envelope = valid
            case .failure(let error): throw ReplyStage.statelessFailure(error, id: id)
            }
            if method == "server/discover" {
                let result: JSONValue = .object([
                    ("supportedVersions", .array((StatelessEnvelope.supportedVersions + GatewayMCPInfo.supportedVersions).map { .string($0) })),
                    ("capabilities", GatewayMCPInfo.capabilities),
                    ("instructions", .string(GatewayMCPInfo.instructions)),
                ])
                let stamped = StatelessEnvelope.stamp(result, method: method, serverInfo: GatewayMCPInfo.serverInfo)
                return .answered(MCPFailure.reply(.result(id: id, result: stamped)))
            }
            var caller = MCPCaller(protocolVersion: envelope.protocolVersion, sessionID: nil, clientName: envelope.clientName)
            caller.agent = agent
            return .caller(caller)
        }
        let session = try await required(request, agent: agent, id: id)
        var caller = MCPCaller(
            protocolVersion: session.protocolVersion, sessionID: session.id, clientName: session.clientName,
            clientCapabilities: Set(session.clientCapabilities ?? [])
        )
        caller.agent = agent
        return .caller(caller)
    }

    /// The request's session, if it exists and belongs to the requesting agent (another agent's
    /// session is "not found", never "forbidden": its existence is not revealed). Revoking every
    /// token of an agent also ends the sessions it had opened: a later token starts afresh.
    func load(_ request: Request, agent: AuthenticatedAgent?) async -> MCPSession? {
        guard let id = request.headers.value(.mcpSessionID), MCPSession.isWellFormedID(id) else { return nil }
        guard let session = try? await sessions.load(id) else { return nil }
        guard session.agent == agent?.agent, session.org == agent?.org else { return nil }
        if let owner = session.agent, let revokedAt = revocations?.agentRevokedAt(owner), revokedAt >= Int64(session.createdAt.timeIntervalSince1970)
        {
            return nil
        }
        return session
    }

    /// The session, or the failure that tells the client what to do: 400 without a session id; 404
    /// for an unknown or expired one (the client then initializes again).
    func required(_ request: Request, agent: AuthenticatedAgent?, id: JSONRPCID? = nil) async throws(MCPFailure) -> MCPSession {
        if let session = await load(request, agent: agent) { return session }
        if request.headers.value(.mcpSessionID) == nil {
            throw MCPFailure(.badRequest, .invalidRequest("Mcp-Session-Id header is required (send initialize first)"), id: id)
        }
        throw MCPFailure(.notFound, .sessionNotFound, id: id)
    }

    /// `initialize`: a new session in shared storage, usable on every replica.
    func open(id: JSONRPCID, params: JSONValue?, agent: AuthenticatedAgent?) async throws(MCPFailure) -> Response {
        guard let params, case .string(let requested) = params["protocolVersion"] ?? .null else {
            return MCPFailure.reply(.error(id: id, .invalidParams("\"protocolVersion\" is required")))
        }
        let version = GatewayMCPInfo.supportedVersions.contains(requested) ? requested : GatewayMCPInfo.latestVersion
        let declared = params["capabilities"]?.objectMembers?.map(\.key) ?? []
        let session = MCPSession(
            id: MCPSession.newID(), protocolVersion: version, clientName: params["clientInfo"]?["name"]?.stringValue, createdAt: Date(),
            clientCapabilities: declared.filter { ["sampling", "elicitation", "roots"].contains($0) }.sorted(),
            agent: agent?.agent, org: agent?.org
        )
        do {
            try await sessions.save(session)
            Counter(label: "warden_mcp_sessions_created_total").increment()
        } catch {
            logger.error("could not store an MCP session", metadata: ["error": "\(error)"])
            throw MCPFailure(.serviceUnavailable, .internalError("sessions are unavailable; try again"), id: id)
        }
        let result: JSONValue = .object([
            ("protocolVersion", .string(version)),
            ("capabilities", GatewayMCPInfo.capabilities),
            ("serverInfo", GatewayMCPInfo.serverInfo),
            ("instructions", .string(GatewayMCPInfo.instructions)),
        ])
        var response = MCPFailure.reply(.result(id: id, result: result))
        response.headers[.mcpSessionID] = session.id
        logger.info("MCP session started", metadata: ["mcp.protocol": "\(version)", "mcp.client": "\(session.clientName ?? "?")"])
        return response
    }
}
