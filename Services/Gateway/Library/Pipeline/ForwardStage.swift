import Logging
import Metrics
import Tracing
import WardenMCP
import WardenServiceKit

/// Stage 7: the request goes to its server's pool and the answer comes back unchanged. While it
/// runs, the call is in `InFlightCalls`, so that what the server sends on the way (progress,
/// logging, its own requests) reaches this client and a cancellation reaches this call. Resource
/// subscriptions that the server accepted are remembered for the session.
struct ForwardStage: Sendable {
    let calls: InFlightCalls
    let subscriptions: ResourceSubscriptions
    let logger: Logger

    func run(_ request: ClientRequest, to target: RouteTarget, channel: CallChannel) async -> Result<JSONValue, JSONRPCError> {
        if request.method == "resources/subscribe" || request.method == "resources/unsubscribe" {
            guard let session = request.caller.sessionID else {
                return .failure(.invalidRequest("subscriptions need a session (the handshake era)"))
            }
            let outcome = await forward(request.method, to: target, caller: request.caller, channel: channel)
            if case .success = outcome, case .resource(let uri) = target.item {
                if request.method == "resources/subscribe" {
                    subscriptions.add(session: session, server: target.server, uri: uri)
                } else {
                    subscriptions.remove(session: session, server: target.server, uri: uri)
                }
            }
            return outcome
        }
        return await forward(request.method, to: target, caller: request.caller, channel: channel)
    }

    /// Forwarded in a client span; its trace context goes to a Streamable HTTP server in the
    /// `traceparent` header and to others in `_meta`, so that the server's own spans join the trace.
    private func forward(_ method: String, to target: RouteTarget, caller: MCPCaller, channel: CallChannel) async -> Result<JSONValue, JSONRPCError> {
        let started = ContinuousClock.now
        let result = await WardenTrace.withSpan("MCP \(MCPMetrics.method(method)) → \(target.server)", ofKind: .client) { span in
            span?.annotate { $0["mcp.server"] = target.server }
            let result = await call(method, to: target, caller: caller, channel: channel)
            if case .failure(let error) = result {
                span?.annotate { $0["rpc.jsonrpc.error_code"] = error.code }
                span?.setStatus(SpanStatus(code: .error))
            }
            return result
        }
        MCPMetrics.shared.recordDownstream(server: target.server, method: method, ContinuousClock.now - started)
        return result
    }

    private func call(_ method: String, to target: RouteTarget, caller: MCPCaller, channel: CallChannel) async -> Result<JSONValue, JSONRPCError> {
        let pool = target.pool
        var (number, params) = calls.begin(server: target.server, params: target.params, channel: channel, caller: caller)
        defer { calls.end(number) }
        // Over Streamable HTTP the header carries it; a client's own `_meta` trace is replaced all the
        // same, so that the server does not read two parents.
        if pool.traceInMeta || params["_meta"]?["traceparent"] != nil { params = TraceContext.carried(in: params) }
        do {
            return .success(try await pool.call(method, params: params))
        } catch is CancellationError {
            return .failure(.requestCancelled)
        } catch let error as DownstreamError {
            if let serverError = error.serverError { return .failure(serverError) }
            logger.warning("downstream call failed", metadata: ["mcp.server": "\(target.server)", "mcp.method": "\(method)", "error": "\(error)"])
            if error.code == .credentials { return .failure(JSONRPCError(code: JSONRPCError.Code.credentialMissing, message: error.description)) }
            return .failure(.downstreamFailure(error.description))
        } catch {
            return .failure(.downstreamFailure("MCP server '\(target.server)': the call failed"))
        }
    }
}
