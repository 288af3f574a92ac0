import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenServiceKit

/// OAuth connections to downstream SaaS through the admin API, and the callback their providers
/// redirect the browser to. The client secret goes in and never comes out; tokens never leave the
/// vault except to be injected.
///
/// - `POST /admin/v1/oauth/clients` `{org, name, clientId, clientSecret?, authorizeUrl, tokenUrl, scopes?}`
/// - `GET /admin/v1/oauth/clients?org=`, `POST /admin/v1/oauth/clients/delete` `{org, name}`
/// - `POST /admin/v1/oauth/connect` `{org, name, user?}`: the URL to open in a browser (valid 10 minutes)
/// - `GET /admin/v1/oauth/status?org=&name=&user=`, `POST /admin/v1/oauth/disconnect` `{org, name, user?}`
/// - `GET /oauth/connections/callback`: where the provider sends the browser back (no admin token: the
///   single-use state is the authority).
package struct OAuthConnectionRoutes: Sendable {
    package static let path = "/admin/v1/oauth"
    let client: ServiceClient
    let access: AdminAccess
    let publicURL: String
    let logger: Logger

    package init(client: ServiceClient, access: AdminAccess, publicURL: String, logger: Logger) {
        self.client = client
        self.access = access
        self.publicURL = publicURL
        self.logger = logger
    }

    struct ClientBody: Decodable {
        var org: String
        var name: String
        var clientId: String
        var clientSecret: String?
        var authorizeUrl: String
        var tokenUrl: String
        var scopes: [String]?
    }

    struct ConnectionBody: Decodable {
        var org: String
        var name: String
        var user: String?
    }

    package func addRoutes(to router: Router<WardenRequestContext>) {
        router.post(RouterPath(Self.path + "/clients")) { request, _ -> Response in
            guard let body: ClientBody = await AdminAccess.decode(request) else {
                return AdminProblem(
                    .invalid, "the body must be JSON with org, name, clientId, authorizeUrl, tokenUrl and optional clientSecret, scopes"
                )
                .response
            }
            return await access.answer(request, org: body.org) { actor in
                try await client.call(
                    OAuthEndpoints.setClient,
                    OAuthClientSettings(
                        org: body.org, name: body.name, clientID: body.clientId, clientSecret: body.clientSecret, authorizeURL: body.authorizeUrl,
                        tokenURL: body.tokenUrl, scopes: body.scopes ?? [], actor: actor))
            }
        }
        router.get(RouterPath(Self.path + "/clients")) { request, _ -> Response in
            guard let org = request.uri.queryParameters["org"].map(String.init) else { return AdminProblem(.invalid, "name the org").response }
            return await access.answer(request, org: org) { _ in try await client.call(OAuthEndpoints.listClients, OAuthClientListRequest(org: org)) }
        }
        router.post(RouterPath(Self.path + "/clients/delete")) { request, _ -> Response in
            guard let body: ConnectionBody = await AdminAccess.decode(request) else { return Self.invalid }
            return await access.answer(request, org: body.org) { actor in
                try await client.call(OAuthEndpoints.deleteClient, OAuthGrantReference(org: body.org, name: body.name, actor: actor))
            }
        }
        router.post(RouterPath(Self.path + "/connect")) { request, _ -> Response in
            guard let body: ConnectionBody = await AdminAccess.decode(request) else { return Self.invalid }
            return await access.answer(request, org: body.org) { actor in
                try await client.call(
                    OAuthEndpoints.connect,
                    OAuthConnectRequest(org: body.org, name: body.name, user: body.user, redirectURI: redirectURI, actor: actor))
            }
        }
        router.get(RouterPath(Self.path + "/status")) { request, _ -> Response in
            let query = request.uri.queryParameters
            guard let org = query["org"].map(String.init), let name = query["name"].map(String.init) else {
                return AdminProblem(.invalid, "name the org and the connection").response
            }
            return await access.answer(request, org: org) { _ in
                try await client.call(OAuthEndpoints.status, OAuthGrantReference(org: org, name: name, user: query["user"].map(String.init)))
            }
        }
        router.post(RouterPath(Self.path + "/disconnect")) { request, _ -> Response in
            guard let body: ConnectionBody = await AdminAccess.decode(request) else { return Self.invalid }
            return await access.answer(request, org: body.org) { actor in
                try await client.call(OAuthEndpoints.disconnect, OAuthGrantReference(org: body.org, name: body.name, user: body.user, actor: actor))
            }
        }
        router.get(RouterPath(OAuthEndpoints.callbackPath)) { request, _ -> Response in
            await callback(request)
        }
    }

    var redirectURI: String { publicURL.trimmingSuffix("/") + OAuthEndpoints.callbackPath }

    private func callback(_ request: Request) async -> Response {
        let query = request.uri.queryParameters
        guard let state = query["state"].map(String.init), !state.isEmpty, state.utf8.count <= 128 else {
            return Self.page(.badRequest, "This is not a sign-in redirect", "The provider's redirect carries no state.")
        }
        let callback = OAuthCallback(
            state: state, code: query["code"].map(String.init), error: query["error"].map(String.init),
            errorDescription: query["error_description"].map(String.init))
        do {
            let status = try await client.call(OAuthEndpoints.complete, callback, timeout: .seconds(30))
            let who = status.user.map { " for user \($0)" } ?? ""
            logger.notice(
                "oauth connection made", metadata: ["org": "\(status.org)", "oauth.connection": "\(status.name)", "user": "\(status.user ?? "-")"])
            return Self.page(.ok, "Connected", "Warden holds the connection \(status.name)\(who) in org \(status.org). You can close this window.")
        } catch {
            let status: HTTPResponse.Status =
                switch error.code {
                case .unavailable, .timeout: .serviceUnavailable
                case .internal: .internalServerError
                default: .badRequest
                }
            return Self.page(status, "Not connected", error.message)
        }
    }

    static var invalid: Response { AdminProblem(.invalid, "the body must be JSON with org, name and optional user").response }

    /// A small page for the person in the browser; nothing on it runs or loads anything.
    static func page(_ status: HTTPResponse.Status, _ title: String, _ text: String) -> Response {
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
                .replacingOccurrences(of: "\"", with: "&quot;")
        }
        let html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Warden: \(escaped(title))</title></head>
            <body><h1>\(escaped(title))</h1><p>\(escaped(text))</p></body></html>
            """
        return Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store", .contentSecurityPolicy: "default-src 'none'",
                HTTPField.Name("Referrer-Policy")!: "no-referrer",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
