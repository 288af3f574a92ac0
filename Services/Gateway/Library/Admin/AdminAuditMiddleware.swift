import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
import WardenContracts
import WardenServiceKit

/// Puts every change made through the admin API on the record: each request to `/admin/` that is
/// not a read (POST, PUT, PATCH, DELETE) becomes an `admin.<method>` event naming who asked, the
/// org, the request line and its HTTP status. Who asked and for which org come from the principal
/// the route authenticated (`AdminAccess` reports it here), never from what an unauthenticated
/// request says: a request no credential backs goes to the platform's record as `unauthenticated`.
/// Request bodies are never recorded (they may hold secret values). Signing a chain's head is not a
/// change. When the auditor cannot take events, admin changes are refused (fail closed), like MCP
/// requests.
struct AdminAuditMiddleware: RouterMiddleware {
    typealias Context = WardenRequestContext
    let auditor: CallAuditor

    /// Who the admin route found asking, reported by `AdminAccess` to the middleware around it.
    final class Asker: Sendable {
        let principal = Mutex<AdminPrincipal?>(nil)
    }

    @TaskLocal static var asker: Asker?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Path segments as the router sees them (`//admin/…` routes like `/admin/…`).
        let segments = request.uri.path.split(separator: "/")
        guard segments.first == "admin", ![.get, .head, .options].contains(request.method),
            !segments.elementsEqual(Self.checkpointPath.split(separator: "/"))
        else {
            return try await next(request, context)
        }
        guard auditor.admit() else {
            return AdminProblem(.unavailable, "audit is unavailable: admin changes are refused until it returns").response
        }
        // Admin bodies are small: read once here (the route reads the same bytes) for the org they name.
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: Self.maximumBodyBytes)
        } catch {
            auditor.record(Self.event(request, principal: nil, org: nil, status: .contentTooLarge, time: Date(), latency: .zero))
            throw error
        }
        let asker = Asker()
        let started = ContinuousClock.now
        let time = Date()
        func record(_ status: HTTPResponse.Status) {
            let principal = asker.principal.withLock { $0 }
            auditor.record(
                Self.event(
                    request, principal: principal, org: principal.flatMap { Self.org(of: request, body: body, principal: $0) }, status: status,
                    time: time, latency: ContinuousClock.now - started))
        }
        do {
            let response = try await Self.$asker.withValue(asker) { try await next(request, context) }
            record(response.status)
            return response
        } catch let error as any HTTPResponseError {
            record(error.status)
            throw error
        } catch {
            record(.internalServerError)
            throw error
        }
    }

    static func event(_ request: Request, principal: AdminPrincipal?, org: String?, status: HTTPResponse.Status, time: Date, latency: Duration)
        -> AuditEvent
    {
        let outcome: AuditEvent.Outcome =
            switch status.code {
            case 200..<300: .success
            case 401, 403: .denied
            default: .failure
            }
        let actor: String =
            switch principal {
            case .platform: "platform-admin"
            case .org(_, let user): "user:\(user)"
            case nil: "unauthenticated"
            }
        let milliseconds = latency.components.seconds * 1_000 + latency.components.attoseconds / 1_000_000_000_000_000
        return AuditEvent(
            time: time, service: .gateway, action: "admin.\(request.method.rawValue.lowercased())", outcome: outcome, org: org, actor: actor,
            target: "\(request.method.rawValue) \(String(request.uri.path.prefix(200)))", detail: "HTTP \(status.code) in \(milliseconds) ms")
    }

    /// Signing a chain's head changes nothing but adds a signature; recording it would put a record
    /// after the checkpoint an export ends at.
    static let checkpointPath = AuditAdminRoutes.path + "/checkpoint"

    /// Larger bodies are refused by every admin route anyway (policy documents are the largest).
    static let maximumBodyBytes = 4 << 20

    /// The org whose record an authenticated change belongs to: an org admin's own org; for the
    /// platform admin, the org the request names (`/admin/v1/orgs/<org>/…`, its `org` query
    /// parameter, or the `org` of its JSON body), nil (the platform's record) if none or if it is no
    /// org name.
    static func org(of request: Request, body: ByteBuffer, principal: AdminPrincipal) -> String? {
        if case .org(let own, _) = principal { return own }
        var named: String?
        let segments = request.uri.path.split(separator: "/")
        if let index = segments.firstIndex(of: "orgs"), index + 1 < segments.count {
            named = String(segments[index + 1]).removingPercentEncoding
        } else if let org = request.uri.queryParameters["org"], !org.isEmpty {
            named = String(org)
        } else if body.readableBytes > 0, let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] {
            named = object["org"] as? String
        }
        return named.flatMap { AuditCheckpoint.isChainName($0) ? $0 : nil }
    }
}
