import Foundation
import Hummingbird
import Logging
import WardenContracts
import WardenServiceKit

/// What an org admin sets about the org's audit trail that the gateway acts on:
/// - `PUT /admin/v1/orgs/:org/audit-sinks` (`AuditSinks`: webhook sinks that get every stored
///   record; kept in the vault) and `GET` the same (URLs and secrets masked) with how far each got;
/// - `PUT /admin/v1/orgs/:org/audit-continuity` (`{"whenUnavailable": "refuse" | "continue"}`) and
///   `GET` the same: whether the org's requests may run unrecorded while audit is unavailable.
package struct AuditSettingsRoutes: Sendable {
    let sinks: OrgSecretDocument<AuditSinks>
    let cursors: AuditSinkCursors
    let continuity: AuditContinuitySettings
    let client: ServiceClient
    let access: AdminAccess
    /// Endpoints on this machine are allowed (`WARDEN_APPROVAL_LOCAL_ENDPOINTS=true`).
    let allowLocal: Bool
    let logger: Logger

    package init(
        sinks: OrgSecretDocument<AuditSinks>, cursors: AuditSinkCursors, continuity: AuditContinuitySettings, client: ServiceClient,
        access: AdminAccess, allowLocal: Bool, logger: Logger
    ) {
        self.sinks = sinks
        self.cursors = cursors
        self.continuity = continuity
        self.client = client
        self.access = access
        self.allowLocal = allowLocal
        self.logger = logger
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.put("/admin/v1/orgs/:org/audit-sinks") { request, context in
            let org = context.parameters.get("org") ?? ""
            let body: AuditSinks? = await AdminAccess.decode(request, limit: 64 << 10)
            return await access.answer(request, org: org) { actor in
                guard let body, AuditCheckpoint.isChainName(org) else {
                    throw AdminProblem(.invalid, "the body is JSON: {\"sinks\": [{\"id\", \"url\", \"secret\", \"from\": \"now\" | \"start\"}]}")
                }
                if let problem = Self.problem(body, allowLocal: allowLocal) { throw AdminProblem(.invalid, problem) }
                // A new sink starting now starts after the chain's newest record.
                var head: Int64 = 0
                if body.sinks.contains(where: { $0.from != .start }) {
                    head = try await client.call(AuditEndpoints.query, AuditQuery(org: org, limit: 1)).records.first?.position ?? 0
                }
                try await sinks.set(body, org: org, actor: actor)
                try await cursors.sync(org: org, sinks: body.sinks, head: head)
                logger.notice("audit sinks set", metadata: ["org": "\(org)", "by": "\(actor)", "sinks": "\(body.sinks.count)"])
                return AuditSinksView(sinks: body.masked.sinks, status: try await cursors.status(org: org))
            }
        }
        router.get("/admin/v1/orgs/:org/audit-sinks") { request, context in
            let org = context.parameters.get("org") ?? ""
            return await access.answer(request, org: org) { _ in
                AuditSinksView(sinks: (try await sinks.value(org: org) ?? AuditSinks()).masked.sinks, status: try await cursors.status(org: org))
            }
        }
        router.put("/admin/v1/orgs/:org/audit-continuity") { request, context in
            let org = context.parameters.get("org") ?? ""
            let body: AuditContinuity? = await AdminAccess.decode(request)
            return await access.answer(request, org: org) { actor in
                guard let body, AuditCheckpoint.isChainName(org) else {
                    throw AdminProblem(.invalid, "the body is {\"whenUnavailable\": \"refuse\" or \"continue\"}")
                }
                let setting = try await continuity.set(org: org, body.whenUnavailable, by: actor)
                if body.whenUnavailable == .continue {
                    logger.warning(
                        "an org lets its requests run unrecorded while audit is unavailable", metadata: ["org": "\(org)", "by": "\(actor)"])
                }
                return setting
            }
        }
        router.get("/admin/v1/orgs/:org/audit-continuity") { request, context in
            let org = context.parameters.get("org") ?? ""
            return await access.answer(request, org: org) { _ in try await continuity.setting(org: org) }
        }
    }

    /// Why the sinks cannot be set; nil when they can.
    static func problem(_ sinks: AuditSinks, allowLocal: Bool) -> String? {
        guard sinks.sinks.count <= AuditSinks.maximumCount else { return "at most \(AuditSinks.maximumCount) sinks per org" }
        guard Set(sinks.sinks.map(\.id)).count == sinks.sinks.count else { return "each sink's id must be different" }
        for sink in sinks.sinks {
            guard (1...64).contains(sink.id.utf8.count), sink.id.utf8.allSatisfy({ $0.isIdentifierByte }) else {
                return "a sink's id is 1 to 64 letters, digits, - and _"
            }
            if let problem = WebhookEndpoint.problem(sink.url, name: "the url of sink \(sink.id)", allowLocal: allowLocal) { return problem }
            guard (16...1_024).contains(sink.secret.utf8.count) else {
                return "the secret of sink \(sink.id) signs each delivery: 16 to 1024 characters"
            }
        }
        return nil
    }
}

extension UInt8 {
    fileprivate var isIdentifierByte: Bool {
        (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self) || self == 0x2D || self == 0x5F
    }
}
