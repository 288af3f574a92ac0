import Foundation
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenServiceKit

/// Policies through the admin API. An org admin manages their org's policy and its users' own.
///
/// - `POST /admin/v1/policies` `{org, user?, document (YAML), dryRun?}`: check and apply (or only
///   compare); a refused document names the line, column and field, and changes nothing
/// - `GET /admin/v1/policies?org=&user=`: the current version; `GET …/policies/history?org=&user=`
/// - `POST /admin/v1/policies/rollback` `{org, user?, version}`
/// - `POST /admin/v1/policies/explain` `{org, agent, tool, arguments?, clientAddress?, client?, claims?, time?}`
/// - `POST /admin/v1/policies/effective` `{org, agent}`: every tool of the org's servers the agent may
///   use, always, on conditions or after approval (a dry run also says which agents gain or lose which)
package struct PolicyAdminRoutes: Sendable {
    package static let path = "/admin/v1/policies"
    let client: ServiceClient
    let access: AdminAccess
    /// The namespaced names of the tools an org's agents can reach (its servers' and the shared ones).
    let tools: @Sendable (String) -> [String]
    let logger: Logger

    package init(client: ServiceClient, access: AdminAccess, tools: @escaping @Sendable (String) -> [String], logger: Logger) {
        self.client = client
        self.access = access
        self.tools = tools
        self.logger = logger
    }

    struct EffectiveBody: Decodable {
        var org: String
        var agent: String
    }

    struct ApplyBody: Decodable {
        var org: String
        var user: String?
        var document: String
        var dryRun: Bool?
    }

    struct RollbackBody: Decodable {
        var org: String
        var user: String?
        var version: Int
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.post(RouterPath(Self.path)) { request, _ -> Response in
            // A policy of 10,000 rules stays well under 4 MiB.
            guard let body: ApplyBody = await AdminAccess.decode(request, limit: 5 << 20) else {
                return AdminProblem(.invalid, "the body must be JSON with org, document (the YAML text) and optional user, dryRun").response
            }
            return await access.answer(request, org: body.org) { actor in
                try await client.call(
                    PolicyEndpoints.apply,
                    PolicyApply(
                        scope: PolicyScope(org: body.org, user: body.user), document: body.document, dryRun: body.dryRun ?? false, actor: actor,
                        tools: body.dryRun == true ? tools(body.org) : nil))
            }
        }
        router.get(RouterPath(Self.path)) { request, _ -> Response in
            guard let scope = Self.scope(request) else { return AdminProblem(.invalid, "name the org").response }
            return await access.answer(request, org: scope.org) { _ in try await client.call(PolicyEndpoints.current, scope) }
        }
        router.get(RouterPath(Self.path + "/history")) { request, _ -> Response in
            guard let scope = Self.scope(request) else { return AdminProblem(.invalid, "name the org").response }
            return await access.answer(request, org: scope.org) { _ in try await client.call(PolicyEndpoints.history, scope) }
        }
        router.post(RouterPath(Self.path + "/rollback")) { request, _ -> Response in
            guard let body: RollbackBody = await AdminAccess.decode(request) else {
                return AdminProblem(.invalid, "the body must be JSON with org, version and optional user").response
            }
            return await access.answer(request, org: body.org) { actor in
                try await client.call(
                    PolicyEndpoints.rollback, PolicyRollback(scope: PolicyScope(org: body.org, user: body.user), version: body.version, actor: actor))
            }
        }
        router.post(RouterPath(Self.path + "/effective")) { request, _ -> Response in
            guard let body: EffectiveBody = await AdminAccess.decode(request) else {
                return AdminProblem(.invalid, "the body must be JSON with org and agent").response
            }
            return await access.answer(request, org: body.org) { _ in
                try await client.call(PolicyEndpoints.effective, PolicyListing(org: body.org, agent: body.agent, tools: tools(body.org)))
            }
        }
        router.post(RouterPath(Self.path + "/explain")) { request, _ -> Response in
            guard let question: PolicyQuestion = await AdminAccess.decode(request, limit: 1 << 20) else {
                return AdminProblem(
                    .invalid, "the body must be JSON with org, agent, tool and optional arguments (JSON text), clientAddress, claims, time"
                )
                .response
            }
            return await access.answer(request, org: question.org) { _ in try await client.call(PolicyEndpoints.explain, question) }
        }
    }

    static func scope(_ request: Request) -> PolicyScope? {
        guard let org = request.uri.queryParameters["org"].map(String.init) else { return nil }
        return PolicyScope(org: org, user: request.uri.queryParameters["user"].map(String.init))
    }
}
