import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import WardenContracts
import WardenIdentity
import WardenMCP
import WardenServiceKit

/// The approvers' API, authenticated with an approver token (`warden user token`):
/// - `GET /approvals/v1/requests?state=pending&limit=50`: the org's requests this approver may
///   decide (or did), newest first;
/// - `GET /approvals/v1/requests/:id`;
/// - `POST /approvals/v1/requests/:id/approve` with optional `arguments` (a JSON object replacing
///   the call's), `rememberSeconds`, `rememberAnyArguments` and `revision` (the one looked at: refused
///   if an approver changed the arguments since); `POST …/reject` with `reason`;
/// - `GET /approvals/v1/events`: an SSE stream of new requests, decisions and expiries for this
///   approver (`event: approval`, `data:` an `ApprovalChange`); `GET /approvals/v1/ws`, the same
///   over a WebSocket.
/// Errors are RFC 9457 problems. Another org's requests do not exist for an approver.
package struct ApproverRoutes: Sendable {
    package static let prefix = "/approvals/v1"
    let access: ApproverAccess
    let client: ServiceClient
    let feeds: ApproverFeeds
    let logger: Logger
    /// A comment on the live stream this often, so proxies keep it open.
    var keepAlive: Duration = .seconds(15)

    package init(access: ApproverAccess, client: ServiceClient, feeds: ApproverFeeds, logger: Logger) {
        self.access = access
        self.client = client
        self.feeds = feeds
        self.logger = logger
    }

    /// A decision's body: `{reason, arguments (an object), rememberSeconds, rememberAnyArguments}`.
    struct DecisionBody {
        var reason: String?
        var arguments: String?
        var rememberSeconds: Int?
        var rememberAnyArguments: Bool?
        var revision: Int?

        init() {}

        init(_ bytes: ByteBuffer) throws(ServiceError) {
            let usage = "the body is JSON: {reason, arguments (an object), rememberSeconds, rememberAnyArguments}"
            guard let value = try? JSONParser().parse(bytes.readableBytesView), case .object = value else { throw ServiceError(.badRequest, usage) }
            switch value["reason"] {
            case nil, .null?: break
            case .string(let text)?: reason = text
            default: throw ServiceError(.badRequest, "reason is text")
            }
            switch value["arguments"] {
            case nil, .null?: break
            case let object? where object.objectMembers != nil: arguments = object.jsonText
            default: throw ServiceError(.badRequest, "arguments is a JSON object: the call's arguments as they should run")
            }
            switch value["rememberSeconds"] {
            case nil, .null?: break
            case .number(let literal)?:
                guard let seconds = Int(literal) else { throw ServiceError(.badRequest, "rememberSeconds is a whole number of seconds") }
                rememberSeconds = seconds
            default: throw ServiceError(.badRequest, "rememberSeconds is a whole number of seconds")
            }
            switch value["rememberAnyArguments"] {
            case nil, .null?: break
            case .bool(let flag)?: rememberAnyArguments = flag
            default: throw ServiceError(.badRequest, "rememberAnyArguments is true or false")
            }
            switch value["revision"] {
            case nil, .null?: break
            case .number(let literal)? where Int(literal) != nil: revision = Int(literal)
            default: throw ServiceError(.badRequest, "revision is the request's revision you looked at (a whole number)")
            }
        }
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        let group = router.group(RouterPath(Self.prefix))
        group.get("requests") { request, _ in
            await approver(request) { approver in
                let states = request.uri.queryParameters.getAll("state").compactMap { ApprovalState(rawValue: String($0)) }
                let limit = request.uri.queryParameters.get("limit").flatMap(Int.init)
                let query = ApprovalQuery(approver: approver, states: states.isEmpty ? nil : states, limit: limit)
                return Self.json(.ok, try await client.call(ApprovalEndpoints.list, query))
            }
        }
        group.get("requests/:id") { request, context in
            await approver(request) { approver in
                Self.json(
                    .ok, try await client.call(ApprovalEndpoints.get, ApprovalLookup(approver: approver, id: context.parameters.get("id") ?? "")))
            }
        }
        for verdict in [ApprovalDecision.Verdict.approve, .reject] {
            group.post(RouterPath("requests/:id/\(verdict.rawValue)")) { request, context in
                await approver(request) { approver in
                    // Only a JSON body: a form on another site cannot send one without the
                    // browser asking first (and a bearer token, which it does not have).
                    guard let type = request.headers[.contentType], type.lowercased().hasPrefix("application/json") else {
                        throw ServiceError(.badRequest, "a decision's body is application/json (an empty object is fine)")
                    }
                    guard let buffer = try? await request.body.collect(upTo: 128 << 10) else {
                        throw ServiceError(.badRequest, "the body is at most 128 KiB")
                    }
                    let body = buffer.readableBytes == 0 ? DecisionBody() : try DecisionBody(buffer)
                    let decision = ApprovalDecision(
                        approver: approver, id: context.parameters.get("id") ?? "", verdict: verdict, reason: body.reason,
                        arguments: body.arguments, rememberSeconds: body.rememberSeconds, rememberAnyArguments: body.rememberAnyArguments,
                        revision: body.revision)
                    let decided = try await client.call(ApprovalEndpoints.decide, decision)
                    logger.info(
                        "approval decided",
                        metadata: ["approval.id": "\(decided.id)", "approval.state": "\(decided.state.rawValue)", "user": "\(approver.user)"])
                    return Self.json(.ok, decided)
                }
            }
        }
        group.get("events") { request, _ in
            await approver(request) { approver in
                guard let token = ApproverAccess.bearer(request), let claims = await access.authenticator.validateApprover(token) else {
                    return ApproverAccess.unauthorized
                }
                return events(approver, token: token, expires: Date(timeIntervalSince1970: TimeInterval(claims.exp)))
            }
        }
        // The inbox: public files (the data behind them needs an approver token).
        router.get("/approvals") { _, _ in Self.asset(InboxAssets.page, type: "text/html; charset=utf-8") }
        router.get("/approvals/inbox.js") { _, _ in Self.asset(InboxAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/approvals/inbox.css") { _, _ in Self.asset(InboxAssets.style, type: "text/css; charset=utf-8") }
    }

    /// Nothing but the inbox's own files and the approvals API; no framing, no referrer.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; "
        + "frame-ancestors 'none'; base-uri 'none'"

    static func asset(_ text: String, type: String) -> Response {
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-store"]
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        headers[HTTPField.Name("Cross-Origin-Opener-Policy")!] = "same-origin"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The live stream of one approver's changes over SSE (`event: approval`).
    func events(_ approver: Approver, token: String, expires: Date) -> Response {
        let feed = ApproverFeed(approver: approver, token: token, expires: expires, access: access, feeds: feeds, keepAlive: keepAlive)
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: ": connected as \(approver.user)\n\n"))
                _ = try await feed.follow(closed: nil) { change in
                    guard let change else { return try await writer.write(ByteBuffer(string: ": keep-alive\n\n")) }
                    let data = String(decoding: try EnvelopeCoding.encoder().encode(change), as: UTF8.self)
                    try await writer.write(ByteBuffer(string: "event: approval\ndata: \(data)\n\n"))
                }
                try await writer.finish(nil)
            }
        )
    }

    /// `GET /approvals/v1/ws` upgraded to a WebSocket, with the approver token as a bearer header:
    /// each change is a text message (an `ApprovalChange` as JSON). Without a valid token the
    /// socket is closed at once with code 1008 (policy violation); it is closed the same way when
    /// the token expires or is revoked.
    package func webSocketRoutes() -> Router<BasicWebSocketRequestContext> {
        let router = webSocketRouter()
        let access = self.access
        let feeds = self.feeds
        let keepAlive = self.keepAlive
        router.ws(RouterPath(Self.prefix + "/ws")) { inbound, outbound, context in
            guard let token = ApproverAccess.bearer(context.request), let claims = await access.authenticator.validateApprover(token),
                case .allowed(let approver) = await access.approver(token: token)
            else {
                try await outbound.close(.policyViolation, reason: "an approver token is required")
                return
            }
            let feed = ApproverFeed(
                approver: approver, token: token, expires: Date(timeIntervalSince1970: TimeInterval(claims.exp)), access: access, feeds: feeds,
                keepAlive: keepAlive)
            // The client's side is read only to see it close.
            let (closed, close) = AsyncStream.makeStream(of: Void.self)
            let ended = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await _ in inbound {}
                    close.finish()
                }
                let ended = try await feed.follow(closed: closed) { change in
                    // An unsolicited pong keeps proxies from closing a quiet socket.
                    guard let change else { return try await outbound.write(.pong) }
                    try await outbound.writeTextMessage(String(decoding: try EnvelopeCoding.encoder().encode(change), as: UTF8.self))
                }
                group.cancelAll()
                return ended
            }
            if ended == .credentialEnded { try await outbound.close(.policyViolation, reason: "the approver token expired or was revoked") }
        }
        return router
    }

    /// Runs `body` for the authenticated approver; every failure becomes one problem document.
    func approver(_ request: Request, _ body: (Approver) async throws -> Response) async -> Response {
        let approver: Approver
        switch await access.approver(request) {
        case .refused(let response): return response
        case .allowed(let allowed): approver = allowed
        }
        do {
            return try await body(approver)
        } catch let error as ServiceError {
            return AdminProblem(error).response
        } catch {
            logger.error("an approvals request failed", metadata: ["error": "\(error)"])
            return AdminProblem(.unavailable, "the approvals service could not answer; try again").response
        }
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = EnvelopeCoding.encoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
