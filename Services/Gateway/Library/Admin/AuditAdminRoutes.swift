import Foundation
import Hummingbird
import Logging
import WardenContracts
import WardenServiceKit

/// The audit record through the admin API (the audit service answers). An org admin reads its own
/// org's chain; the platform admin also the platform's own (no `org`).
///
/// - `GET /admin/v1/audit?org=&action=&agent=&name=&outcome=&since=&until=&before=&limit=`: newest
///   first; `next` is the `before` of the next page
/// - `GET /admin/v1/audit/verify?org=`: whether the org's chain is intact, and where it is not
/// - `GET /admin/v1/audit/records?org=&after=&limit=`: records in chain order with their hashes,
///   exact bodies and checkpoints (export); `next` is the `after` of the next page
/// - `PUT /admin/v1/audit/retention` `{"org": …, "days": N | null}`: how long an org's records are
///   kept (platform admin only)
/// - `POST /admin/v1/audit/checkpoint?org=`: signs the chain's head now (an export ends at one)
/// - `GET /.well-known/warden-audit-keys`: the public keys checkpoints are signed with (no
///   credential: an auditor verifies exports with them)
package struct AuditAdminRoutes: Sendable {
    package static let path = "/admin/v1/audit"
    let client: ServiceClient
    let access: AdminAccess
    let logger: Logger

    package init(client: ServiceClient, access: AdminAccess, logger: Logger) {
        self.client = client
        self.access = access
        self.logger = logger
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.get(RouterPath(Self.path)) { request, _ -> Response in
            let parameters = request.uri.queryParameters
            func text(_ name: Substring) -> String? { parameters[name].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
            func date(_ name: Substring) -> Date?? {
                guard let value = text(name) else { return .some(nil) }
                return (try? Date(value, strategy: .iso8601)).map { .some($0) } ?? nil
            }
            guard let since = date("since"), let until = date("until") else {
                return AdminProblem(.invalid, "since and until are ISO 8601 times (2026-11-29T08:00:00Z)").response
            }
            let before = text("before").flatMap { Int64($0) }
            let limit = text("limit").flatMap { Int($0) } ?? 100
            guard (1...1_000).contains(limit), text("before") == nil || before != nil else {
                return AdminProblem(.invalid, "limit is 1 to 1000 and before a record position").response
            }
            let query = AuditQuery(
                org: text("org"), action: text("action"), agent: text("agent"), name: text("name"), outcome: text("outcome"), since: since,
                until: until, before: before, limit: limit)
            return await access.answer(request, org: query.org) { _ in try await client.call(AuditEndpoints.query, query) }
        }
        router.get(RouterPath(Self.path + "/records")) { request, _ -> Response in
            let parameters = request.uri.queryParameters
            let org = parameters["org"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            let after = parameters["after"].map { Int64($0) } ?? 0
            let limit = parameters["limit"].map { Int($0) } ?? 1_000
            guard let after, let limit, after >= 0, (1...5_000).contains(limit) else {
                return AdminProblem(.invalid, "after is a record position and limit 1 to 5000").response
            }
            return await access.answer(request, org: org) { _ in
                try await client.call(AuditEndpoints.records, AuditRecordsRequest(org: org, after: after, limit: limit), timeout: .seconds(60))
            }
        }
        router.put(RouterPath(Self.path + "/retention")) { request, _ -> Response in
            // Removing records is the platform admin's alone: an org admin cannot shorten its own trail.
            guard let setting: AuditRetentionSetting = await AdminAccess.decode(request) else {
                return AdminProblem(.invalid, "the body is {\"org\": …, \"days\": N or null}").response
            }
            return await access.answer(request, org: nil) { _ in try await client.call(AuditEndpoints.retention, setting) }
        }
        router.post(RouterPath(Self.path + "/checkpoint")) { request, _ -> Response in
            let org = request.uri.queryParameters["org"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            return await access.answer(request, org: org) { _ in
                try await client.call(AuditEndpoints.checkpoint, AuditVerifyRequest(org: org), timeout: .seconds(30))
            }
        }
        router.get(RouterPath("/.well-known/warden-audit-keys")) { _, _ -> Response in
            do {
                let keys = try await client.call(AuditKeyEndpoints.keys, AuditKeysRequest())
                var response = Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: try EnvelopeCoding.encoder().encode(keys))))
                response.headers[.cacheControl] = "max-age=300"
                return response
            } catch let error as ServiceError {
                return AdminProblem(error).response
            } catch {
                return AdminProblem(.unavailable, "the vault cannot be reached").response
            }
        }
        router.get(RouterPath(Self.path + "/verify")) { request, _ -> Response in
            let org = request.uri.queryParameters["org"].map(String.init)
            return await access.answer(request, org: org) { _ in
                try await client.call(AuditEndpoints.verify, AuditVerifyRequest(org: org), timeout: .seconds(120))
            }
        }
    }
}
