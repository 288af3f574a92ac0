import Foundation
import Hummingbird
import Logging
import PostgresNIO
import WardenContracts
import WardenServiceKit

/// An org's approval channels, for its admins: `PUT /admin/v1/orgs/:org/approval-channels` (a JSON
/// `ApprovalChannels`; kept in the vault), `GET` the same (secrets shown as "set"), and
/// `GET …/approval-channels/failures`: notices dead-lettered after every attempt.
package struct ApprovalChannelRoutes: Sendable {
    let channels: ApprovalChannelStore
    let access: AdminAccess
    let database: DatabasePool
    /// Endpoints on this machine are allowed (`WARDEN_APPROVAL_LOCAL_ENDPOINTS=true`).
    let allowLocal: Bool
    let logger: Logger

    package init(channels: ApprovalChannelStore, access: AdminAccess, database: DatabasePool, allowLocal: Bool = false, logger: Logger) {
        self.channels = channels
        self.access = access
        self.database = database
        self.allowLocal = allowLocal
        self.logger = logger
    }

    /// One dead-lettered notice.
    struct Failure: Codable {
        var channel: String
        var event: String
        var request: String
        var attempts: Int
        var error: String
        var failedAt: Date
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.put("/admin/v1/orgs/:org/approval-channels") { request, context in
            let org = context.parameters.get("org") ?? ""
            return await admin(request, org: org) { principal in
                guard let buffer = try? await request.body.collect(upTo: 64 << 10),
                    let body = try? EnvelopeCoding.decoder().decode(ApprovalChannels.self, from: Data(buffer.readableBytesView))
                else {
                    throw AdminProblem(.invalid, "the body is JSON: {slackWebhookURL, slackSigningSecret, slackUsers, webhookURL, webhookSecret}")
                }
                if let problem = ApprovalChannelStore.problem(body, allowLocal: allowLocal) { throw AdminProblem(.invalid, problem) }
                let actor: String =
                    switch principal {
                    case .platform: "platform"
                    case .org(_, let user): user
                    }
                try await channels.set(body, org: org, actor: actor)
                logger.notice("approval channels set", metadata: ["org": "\(org)", "by": "\(actor)"])
                return ApproverRoutes.json(.ok, body.masked)
            }
        }
        router.get("/admin/v1/orgs/:org/approval-channels") { request, context in
            let org = context.parameters.get("org") ?? ""
            return await admin(request, org: org) { _ in
                ApproverRoutes.json(.ok, (try await channels.channels(org: org) ?? ApprovalChannels()).masked)
            }
        }
        router.get("/admin/v1/orgs/:org/approval-channels/failures") { request, context in
            let org = context.parameters.get("org") ?? ""
            return await admin(request, org: org) { _ in
                let rows = try await database.query(
                    """
                    SELECT channel, event, request_id, attempts, error, failed_at FROM approval_notice_failures
                    WHERE org = \(org) ORDER BY failed_at DESC LIMIT 200
                    """, logger: logger)
                var failures: [Failure] = []
                for try await (channel, event, request, attempts, error, at) in rows.decode((String, String, String, Int, String, Date).self) {
                    failures.append(Failure(channel: channel, event: event, request: request, attempts: attempts, error: error, failedAt: at))
                }
                return ApproverRoutes.json(.ok, ["failures": failures])
            }
        }
    }

    func admin(_ request: Request, org: String, _ body: (AdminPrincipal) async throws -> Response) async -> Response {
        let principal: AdminPrincipal
        switch await access.require(request, org: org) {
        case .refused(let response): return response
        case .allowed(let allowed): principal = allowed
        }
        do {
            return try await body(principal)
        } catch let problem as AdminProblem {
            return problem.response
        } catch let error as ServiceError {
            return AdminProblem(error).response
        } catch {
            logger.error("approval channels failed", metadata: ["error": "\(error)"])
            return AdminProblem(.unavailable, "the approval channels could not be read or stored; try again").response
        }
    }
}
