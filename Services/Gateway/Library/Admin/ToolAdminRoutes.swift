import Foundation
import Hummingbird
import Logging
import WardenContracts
import WardenServiceKit

/// Pinned tool definitions through the admin API. An org admin reviews and approves their org's.
///
/// - `GET /admin/v1/tools?org=&pending=true`: every tool seen (or only those held) with its status
/// - `GET /admin/v1/tools/diff?org=&tool=`: the approved and the held definition, and what differs
/// - `POST /admin/v1/tools/approve` `{org, tool?, server?, fingerprint?}`: held definitions become
///   the approved ones (one tool, a server's, or all); with `fingerprint`, only if it is still that one
/// - `POST /admin/v1/tools/trust` `{org, trust: first-use|approval}`
package struct ToolAdminRoutes: Sendable {
    package static let path = "/admin/v1/tools"
    let pins: ToolPins
    let access: AdminAccess
    let logger: Logger

    package init(pins: ToolPins, access: AdminAccess, logger: Logger) {
        self.pins = pins
        self.access = access
        self.logger = logger
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.get(RouterPath(Self.path)) { request, _ -> Response in
            guard let org = request.uri.queryParameters["org"].map(String.init) else { return AdminProblem(.invalid, "name the org").response }
            let pendingOnly = request.uri.queryParameters["pending"] == "true"
            return await access.answer(request, org: org) { _ in
                try await Self.storage {
                    ToolPinList(
                        org: org, trust: try await pins.store.trust(org), tools: try await pins.store.records(org: org, pendingOnly: pendingOnly))
                }
            }
        }
        router.get(RouterPath(Self.path + "/diff")) { request, _ -> Response in
            guard let org = request.uri.queryParameters["org"].map(String.init), let tool = request.uri.queryParameters["tool"].map(String.init)
            else { return AdminProblem(.invalid, "name the org and the tool").response }
            return await access.answer(request, org: org) { _ in
                guard var found = try await Self.storage({ try await pins.store.definitions(org: org, tool: tool) }) else {
                    throw ServiceError(.notFound, "no tool '\(tool)' was seen in org '\(org)'")
                }
                found.diff = DefinitionDiff.lines(approved: found.approved, pending: found.pending)
                return found
            }
        }
        router.post(RouterPath(Self.path + "/approve")) { request, _ -> Response in
            guard let approval: ToolPinApproval = await AdminAccess.decode(request) else {
                return AdminProblem(.invalid, "the body must be JSON with org and optional tool, server, fingerprint").response
            }
            return await access.answer(request, org: approval.org) { actor in
                let approved = try await Self.storage { try await pins.store.approve(approval, actor: actor) }
                guard !approved.isEmpty else {
                    if let fingerprint = approval.fingerprint {
                        throw ServiceError(
                            .conflict, "nothing held has fingerprint \(fingerprint): the held definition changed or was approved (look again)")
                    }
                    throw ServiceError(.notFound, "nothing is held for approval there")
                }
                await pins.announce(
                    org: approval.org, action: "tool.approved", actor: actor, target: approved.count == 1 ? approved[0] : "\(approved.count) tools",
                    detail: approved.joined(separator: ", "))
                return ToolPinsApproved(approved: approved)
            }
        }
        router.post(RouterPath(Self.path + "/trust")) { request, _ -> Response in
            guard let setting: ToolTrustSetting = await AdminAccess.decode(request) else {
                return AdminProblem(.invalid, "the body must be JSON with org and trust (first-use or approval)").response
            }
            return await access.answer(request, org: setting.org) { actor in
                try await Self.storage { try await pins.store.setTrust(setting.org, setting.trust, actor: actor) }
                await pins.announce(org: setting.org, action: "tools.trust_set", actor: actor, target: setting.org, detail: setting.trust.rawValue)
                return setting
            }
        }
    }

    /// The gateway's database failing is the gateway's problem, said without its details.
    static func storage<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as ServiceError { throw error } catch {
            throw ServiceError(.unavailable, "tool pins cannot be read or written now")
        }
    }
}
