import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import ServiceContextModule
import Tracing
import WardenMCP
import WardenPolicyEngine
import WardenServiceKit

/// The path of one MCP message a client POSTs, top to bottom. Each stage is a small type with one
/// entry point; a stage that refuses throws `MCPFailure` (rendered once, at the end) or returns the
/// JSON-RPC error the client gets. Later stages (decide, approve, resolve credentials, scrub,
/// record) slot in where `stages` says.
struct MCPRequestPipeline: Sendable {
    /// The order of the stages, as `post` and `process` run them.
    static let stages = [
        "authenticate", "decode", "session", "catalogue", "policy", "route", "credentials", "exposure", "pins", "approval", "limits", "forward",
        "result size",
        "reply",
    ]

    let authenticate: AuthenticateStage
    let decode: DecodeStage
    let session: SessionStage
    let catalogue: CatalogueStage
    let policy: PolicyStage
    let route: RouteStage
    let exposure: ExposureStage
    let pins: ToolPinStage
    let approval: ApprovalStage
    let limits: LimitStage
    let credentials = CredentialStage()
    let forward: ForwardStage
    let resultSize = ResultSizeStage()
    let reply: ReplyStage
    /// Where notifications and answers from the client go (nil: nowhere, in unit tests).
    let clientMessages: (any ClientMessageSink)?
    /// Where answered requests go on record (nil: nowhere, in unit tests).
    var auditor: CallAuditor? = nil
    var clientAddress = ClientAddress(proxies: [])

    func post(_ http: Request, peer: SocketAddress?) async -> Response {
        do {
            let agent = try await authenticate.run(http, peer: peer)
            let message = try await decode.run(http)
            guard case .request(let id, let method, let params) = message else {
                return try await accept(message, from: http, agent: agent)
            }
            switch try await session.run(http, id: id, method: method, params: params, agent: agent) {
            case .answered(let response):
                return response
            case .caller(let caller):
                let request = ClientRequest(
                    id: id, method: method, params: params, caller: caller, clientAddress: clientAddress.of(peer: peer, headers: http.headers))
                // A client that cannot set headers may name its trace in `_meta`.
                let parent = http.headers.value(.traceparent) == nil ? TraceContext.parent(in: params) : nil
                return await reply.run(request) { channel in await process(request, channel: channel, parent: parent) }
            }
        } catch {
            return error.response
        }
    }

    /// What runs for a request once its caller is known, and its record: every request but `ping`
    /// is handed to the auditor when answered (it never waits for the audit stream), and none runs
    /// while the auditor's spool is full (fail closed).
    /// The request's span is the HTTP request's (`RequestSpan`), named for its method; a client
    /// that named its trace in `_meta` (and not in headers) gets a span in that trace instead.
    func process(_ request: ClientRequest, channel: CallChannel, parent: [String: String]? = nil) async -> Result<JSONValue, JSONRPCError> {
        let method = MCPMetrics.method(request.method)
        guard let parent else { return await process(request, channel: channel, method: method, span: RequestSpan.current) }
        let context = WardenTrace.parent(traceparent: parent["traceparent"], tracestate: parent["tracestate"], decided: false)
        return await WardenTrace.withSpan("MCP \(method)", parent: context, ofKind: .server) { span in
            await RequestSpan.$current.withValue(span) { await process(request, channel: channel, method: method, span: span) }
        }
    }

    private func process(_ request: ClientRequest, channel: CallChannel, method: String, span: WardenSpan?) async -> Result<
        JSONValue, JSONRPCError
    > {
        let started = ContinuousClock.now
        var trail = Trail()
        let result = await audited(request, channel: channel, trail: &trail)
        if trail.server == nil, trail.decision != nil { (trail.server, trail.tool) = labels(of: request) }
        MCPMetrics.shared.record(
            method: request.method, server: trail.server, tool: trail.tool, result: result, latency: ContinuousClock.now - started)
        if let span, span.isRecording {
            span.operationName = "MCP \(method)"
            span.annotate { fields in
                fields["mcp.method"] = method
                if let server = trail.server { fields["mcp.server"] = server }
                if let tool = trail.tool { fields["mcp.tool"] = tool }
                fields["warden.outcome"] = MCPMetrics.outcome(result)
                if case .failure(let error) = result { fields["rpc.jsonrpc.error_code"] = error.code }
            }
        }
        return result
    }

    /// The server and listed tool a request refused before routing names, for its metrics and span
    /// (its audit record keeps saying it reached no server): looked up without waiting.
    private func labels(of request: ClientRequest) -> (server: String?, tool: String?) {
        let routed = route.run(method: request.method, params: request.params, org: request.caller.org, user: request.caller.agent?.user)
        guard case .success(let target) = routed else { return (nil, nil) }
        guard case .tool(let name) = target.item, target.pool.lists(tool: name) else { return (target.server, nil) }
        return (target.server, MCPMetrics.shared.tool(name, server: target.server))
    }

    private func audited(_ request: ClientRequest, channel: CallChannel, trail: inout Trail) async -> Result<JSONValue, JSONRPCError> {
        guard let auditor, request.method != "ping" else {
            return await handle(request, channel: channel, trail: &trail)
        }
        switch auditor.admit(org: request.caller.org) {
        case .recorded: break
        case .refused:
            return .failure(JSONRPCError(code: JSONRPCError.Code.auditUnavailable, message: "Audit is unavailable: \(request.method) was not run"))
        case .unrecorded:
            let time = Date()
            let result = await handle(request, channel: channel, trail: &trail)
            auditor.ranUnrecorded(org: request.caller.org ?? "", at: time)
            return result
        }
        let started = ContinuousClock.now
        let time = Date()
        let result = await handle(request, channel: channel, trail: &trail)
        auditor.record(
            CallAuditor.Call(
                method: request.method, params: trail.arguments.map { request.params?.setting("arguments", to: $0) } ?? request.params,
                agent: request.caller.agent, clientAddress: request.clientAddress,
                session: request.caller.sessionID, server: trail.server, credentials: trail.credentials, decision: trail.decision,
                redact: trail.redact, result: result,
                latency: ContinuousClock.now - started, time: time))
        return result
    }

    /// What the record says of how a request was handled.
    struct Trail {
        var server: String?
        /// The tool's name as its server listed it (metrics and spans take no other).
        var tool: String?
        var decision: String?
        /// Set once a rule allowed the call (arguments are kept only then).
        var redact: [JSONPath]?
        /// The arguments the call ran with, when an approver changed the agent's.
        var arguments: JSONValue?
        /// The credentials the server it went to is given (references).
        var credentials: [String] = []
    }

    /// Answered by the gateway, or routed, checked and forwarded to its server.
    private func handle(_ request: ClientRequest, channel: CallChannel, trail: inout Trail) async -> Result<JSONValue, JSONRPCError> {
        if let answer = await catalogue.run(request) { return answer }
        let obligations: PolicyObligations
        switch await Self.stage("policy", traced: request.caller.agent != nil, { await policy.run(request) }) {
        case .success(let owed):
            obligations = owed
            if policy.decisions != nil, request.caller.agent != nil, PolicyStage.item(request.method, request.params) != nil {
                trail.decision = "allow"
            }
            trail.redact = owed.redact
        case .failure(let refusal):
            trail.decision =
                switch refusal.code {
                case JSONRPCError.Code.policyDenied: "deny"
                case JSONRPCError.Code.approvalRequired: "approve"
                default: "unavailable"
                }
            return .failure(refusal)
        }
        var target: RouteTarget
        switch route.run(method: request.method, params: request.params, org: request.caller.org, user: request.caller.agent?.user) {
        case .success(let found): target = found
        case .failure(let error): return .failure(error)
        }
        trail.server = target.server
        trail.credentials = target.credentialReferences
        // A user's missing credential is said before anything waits for their server's instances,
        // which cannot start without it.
        if let missing = await Self.stage("credentials", traced: target.userCredentials != nil, { await credentials.run(target) }) {
            return .failure(missing)
        }
        switch await exposure.run(target, requested: request) {
        case .success(let exposed): target = exposed
        case .failure(let refusal): return .failure(refusal)
        }
        if case .tool(let name) = target.item, target.listed != nil { trail.tool = MCPMetrics.shared.tool(name, server: target.server) }
        if let refusal = await pins.run(target, requested: request) { return .failure(refusal) }
        guard let required = obligations.approval else {
            if let refusal = await limits.run(obligations, requested: request) { return .failure(refusal) }
            return await run(request, target, obligations, channel, &trail)
        }
        trail.decision = "approve"
        let original = target.params
        let verdict = await Self.stage("approval") {
            await approval.run(request, target: target, approval: required, redact: obligations.redact, channel: channel) { params in
                // An approver's arguments are decided by policy again (it may have changed since): they
                // run allowed, or under the same approval rule, and with their own obligations.
                var owed = obligations
                if params != original {
                    var modified = request
                    modified.params = request.params?.setting("arguments", to: params["arguments"] ?? .object([]))
                    switch await policy.run(modified) {
                    case .failure(let refusal): return .failure(refusal)
                    case .success(let decided):
                        if let other = decided.approval, other.rule != required.rule {
                            return .failure(
                                JSONRPCError(
                                    code: JSONRPCError.Code.policyDenied,
                                    message: "Denied by policy: the approved arguments need another approval (rule \(other.rule))"))
                        }
                        owed = decided
                    }
                }
                if let refusal = await limits.run(owed, requested: request) { return .failure(refusal) }
                return .success(owed)
            }
        }
        switch verdict {
        case .answer(let answer):
            return answer
        case .run(let params, let owed, let claim):
            if params != original { trail.arguments = params["arguments"] }
            target.params = params
            return await approval.finish(claim, await run(request, target, owed, channel, &trail))
        }
    }

    /// The last stages: forwarded, its result's size checked.
    private func run(
        _ request: ClientRequest, _ target: RouteTarget, _ obligations: PolicyObligations, _ channel: CallChannel, _ trail: inout Trail
    ) async -> Result<JSONValue, JSONRPCError> {
        // Its span is the downstream call's own (`ForwardStage`).
        let forwarded = await Self.stage("forward", traced: false) { await forward.run(request, to: target, channel: channel) }
        return resultSize.run(forwarded, maximum: obligations.maxResultBytes, request: request)
    }

    /// Runs one stage and times it: a histogram per stage and, when the request is traced and the
    /// stage does work of its own (`traced`), a span of its own (what the stage asks of another
    /// service is a child of that span). A stage with nothing to do costs no span.
    private static func stage<T>(_ name: String, traced: Bool = true, _ body: () async -> T) async -> T {
        let started = ContinuousClock.now
        let value: T
        if traced, let span = RequestSpan.current, span.isRecording {
            value = await WardenTrace.withSpan("\(name) stage", ofKind: .internal) { _ in await body() }
        } else {
            value = await body()
        }
        let elapsed = ContinuousClock.now - started
        MCPMetrics.stageTimers[name]?.record(duration: elapsed)
        return value
    }

    /// A client's notification or answer: accepted (202) once its session is known, and passed on.
    /// The stateless era defines no client-to-server notifications over HTTP: accepted and dropped.
    private func accept(_ message: JSONRPCMessage, from http: Request, agent: AuthenticatedAgent?) async throws(MCPFailure) -> Response {
        if case .notification(_, let params) = message, http.headers.value(.mcpSessionID) == nil {
            let headers = StatelessEnvelope.Headers(
                protocolVersion: http.headers.value(.mcpProtocolVersion), method: http.headers.value(.mcpMethod), name: http.headers.value(.mcpName))
            if StatelessEnvelope.isStateless(params: params, headers: headers) { return Response(status: .accepted) }
        }
        let current = try await session.required(http, agent: agent)
        switch message {
        case .notification("notifications/cancelled", let params):
            if let requestID = params?["requestId"].flatMap(JSONRPCID.init) {
                clientMessages?.cancel(InFlightCalls.RequestKey(session: current.id, id: requestID))
            }
        case .result(let id, _), .error(let id?, _):
            // The client's answer to a server's request (sampling, elicitation), relayed to the
            // replica that waits for it.
            clientMessages?.answer(session: current.id, id: id, message)
        default:
            break
        }
        return Response(status: .accepted)
    }
}
