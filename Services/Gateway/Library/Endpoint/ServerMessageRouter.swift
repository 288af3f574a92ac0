import Logging
import WardenMCP

/// Sends what servers say on their own to the clients it concerns: progress and logging to the call
/// they belong to, `list_changed` to every standing stream on this replica (only the server's org's,
/// for an org's own server), resource updates to the sessions that subscribed, and a server's
/// requests (sampling, elicitation, roots) to the client whose call it serves, when that client
/// declared the capability; the answer goes back to the server. Requests that cannot be attributed
/// to exactly one call get an error, never a guess.
struct ServerMessageRouter: Sendable {
    let registry: DownstreamRegistry
    let calls: InFlightCalls
    let streams: SessionStreams
    let relay: ServerRequestRelay
    let subscriptions: ResourceSubscriptions
    let sendToSession: @Sendable (JSONRPCMessage, String) -> Void
    let logger: Logger

    /// How long a client has to answer a server's request (a person may be answering).
    static let clientAnswerTimeout = Duration.seconds(120)

    /// Installs the router as every server's message handler.
    func install() {
        registry.setMessageHandler { server, message, transport in await route(message, from: server, transport: transport) }
    }

    func route(_ message: JSONRPCMessage, from server: String, transport: any DownstreamTransport) async {
        switch message {
        case .notification(let method, _) where DownstreamSupervisor.listings[method] != nil:
            streams.broadcast(message, org: registry.org(of: server))
        case .notification("notifications/resources/updated", let params):
            // To the sessions that subscribed through this replica, under the gateway's URI.
            guard case .string(let uri) = params?["uri"] ?? .null, let params else { return }
            let update = JSONRPCMessage.notification(
                method: "notifications/resources/updated",
                params: params.setting("uri", to: .string(ResourceNamespace.qualify(server: server, uri: uri)))
            )
            for session in subscriptions.sessions(server: server, uri: uri) { sendToSession(update, session) }
        case .notification("notifications/cancelled", let params)
        where params?["requestId"].flatMap(JSONRPCID.init).map({ relay.withdraw(server: server, serverRequestID: $0, reason: params?["reason"]) })
            == true:
            break
        case .notification(let method, _):
            if !calls.route(message, from: server) {
                logger.debug("no client for a server notification", metadata: ["mcp.server": "\(server)", "mcp.method": "\(method)"])
            }
        case .request(let id, "ping", _):
            try? await transport.send(.result(id: id, result: .object([])))
        case .request(let id, let method, let params):
            switch await ask(method, id: id, params: params, from: server) {
            case .success(let result): try? await transport.send(.result(id: id, result: result))
            case .failure(let error):
                logger.info(
                    "a server's request was not relayed",
                    metadata: ["mcp.server": "\(server)", "mcp.method": "\(method)", "reason": "\(error.message)"])
                try? await transport.send(.error(id: id, error))
            }
        default:
            break
        }
    }

    /// Relays a server's request to the one client whose call it serves, and returns the answer.
    func ask(_ method: String, id: JSONRPCID, params: JSONValue?, from server: String) async -> Result<JSONValue, JSONRPCError> {
        guard let capability = ServerRequestRelay.capability(for: method) else {
            return .failure(.methodNotFound(method))
        }
        guard let (channel, caller) = calls.requester(for: server) else {
            return .failure(.notRelayed("\(method): no single client request to relay it to"))
        }
        guard let session = caller.sessionID else {
            return .failure(.notRelayed("\(method): a stateless (2026-07-28) client cannot be asked during a call"))
        }
        guard caller.clientCapabilities.contains(capability) else {
            return .failure(.notRelayed("\(method): the client did not declare the \(capability) capability"))
        }
        switch await relay.ask(
            method, params: params, session: session, channel: channel, timeout: Self.clientAnswerTimeout, server: server, serverRequestID: id)
        {
        case .result(_, let result)?: return .success(result)
        case .error(_, let error)?: return .failure(error)
        default: return .failure(.requestTimeout("\(method): the client did not answer in time"))
        }
    }
}
