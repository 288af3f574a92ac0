import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing
import WardenContracts
import WardenNATS

#if canImport(Glibc)
    import Glibc
#endif

/// OAuth connections to a downstream SaaS, through the real processes: an authorization server built
/// with authlib that rotates refresh tokens and counts its grants, an MCP server that accepts only its
/// access tokens, two vault replicas and two gateway replicas, and the official Python client.
@Suite(.serialized) struct OAuthConnectionTests {
    /// Access tokens live this long: refreshed a third of it before they expire.
    static let tokenSeconds = 12
    static let refreshActor = "vault:oauth-refresh"

    struct SaaS {
        var process: ChildProcess
        var authorizationServer: String
        var mcp: String

        func get(_ path: String) async throws -> Data {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: authorizationServer + path), timeout: .seconds(10))
            return Data(buffer: try await response.body.collect(upTo: 1 << 20))
        }

        func stats() async throws -> [String: Int] { try JSONDecoder().decode([String: Int].self, from: try await get("/admin/stats")) }
        func issuedTokens() async throws -> [String] { try JSONDecoder().decode([String].self, from: try await get("/admin/tokens")) }

        func revokeRefreshTokens() async throws { try await post("/admin/revoke") }
        func outage(_ on: Bool) async throws { try await post("/admin/outage?on=\(on ? 1 : 0)") }

        private func post(_ path: String) async throws {
            var request = HTTPClientRequest(url: authorizationServer + path)
            request.method = .POST
            _ = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        }
    }

    func startSaaS(tokenSeconds: Int = Self.tokenSeconds) async throws -> SaaS {
        let (asPort, mcpPort) = (freePort(), freePort())
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/oauth_saas_server.py").path
        let child = try ChildProcess(
            name: "oauth-saas", executable: URL(fileURLWithPath: try StdioServerTests.python),
            arguments: [script, "\(asPort)", "\(mcpPort)", "\(tokenSeconds)"])
        let saas = SaaS(process: child, authorizationServer: "http://127.0.0.1:\(asPort)", mcp: "http://127.0.0.1:\(mcpPort)/mcp")
        let answering = await eventually(timeout: .seconds(60)) {
            guard (try? await saas.stats()) != nil else { return false }
            return (try? await HTTPClient.shared.execute(HTTPClientRequest(url: saas.mcp), timeout: .seconds(2))) != nil
        }
        #expect(answering, "the SaaS stand-in did not start: \(child.output)")
        return saas
    }

    func warden(_ mesh: TestMesh, _ arguments: [String]) async throws -> String {
        let (status, output) = try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
        #expect(status == 0, "warden \(arguments.joined(separator: " ")): \(output)")
        return output
    }

    /// Opens the sign-in link as a browser would, signing in at the provider as `user`: the provider
    /// redirects to the gateway's callback. The callback's status, page and URL.
    func signIn(_ link: String, as user: String) async throws -> (status: UInt, page: String, callback: String) {
        let browser = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        do {
            let consent = try await browser.execute(HTTPClientRequest(url: link + "&as=\(user)"), timeout: .seconds(10))
            let callback = try #require(consent.headers.first(name: "Location"), "the provider redirects back")
            let landing = try await browser.execute(HTTPClientRequest(url: callback), timeout: .seconds(30))
            let page = String(buffer: try await landing.body.collect(upTo: 1 << 16))
            try await browser.shutdown()
            return (landing.status.code, page, callback)
        } catch {
            try? await browser.shutdown()
            throw error
        }
    }

    func call(_ url: String, _ tools: [String]) async throws -> (status: Int32?, output: String, answers: [String: [String: Any]]) {
        let run = try await runPythonCheck("mcp_credential_check.py", [url + "/mcp", "saas"] + tools, timeout: .seconds(90))
        let line = run.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let answers = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [String: Any]]) ?? [:]
        return (run.status, run.output, answers)
    }

    @Test func aConnectionMadeOnceIsRefreshedOnceAcrossReplicasAndARevokedOneSaysSo() async throws {
        let saas = try await startSaaS()
        defer { kill(saas.process.pid, SIGKILL) }
        try await withMesh { mesh in
            // Providers under test listen on plain http at loopback addresses, which the vault refuses unless told.
            let loopback = ["WARDEN_OAUTH_ALLOW_LOOPBACK_HTTP": "true"]
            try mesh.start(.vault, extra: loopback)
            try mesh.start(.vault, name: "vault-2", extra: loopback)
            try mesh.start(.gateway)
            let secondPort = freePort()
            try mesh.start(.gateway, name: "gateway-2", extra: ["WARDEN_HTTP_PORT": "\(secondPort)"])
            let secondURL = "http://127.0.0.1:\(secondPort)"
            try await mesh.withAgent {
                let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("oauth-client-\(UUID().uuidString)")
                try Data("test-client-secret-0123456789\n".utf8).write(to: secretFile)
                defer { try? FileManager.default.removeItem(at: secretFile) }
                let stored = try await warden(
                    mesh,
                    [
                        "oauth", "provider", "set", "saas", "--org", "acme", "--client-id", "warden-test", "--client-secret-file", secretFile.path,
                        "--authorize-url", saas.authorizationServer + "/authorize", "--token-url", saas.authorizationServer + "/token", "--scope",
                        "tools",
                    ])
                #expect(stored.contains("confidential"), "\(stored)")
                let listed = try await warden(mesh, ["oauth", "provider", "list", "--org", "acme"])
                #expect(listed.contains("warden-test") && !listed.contains("test-client-secret"), "\(listed)")
                let insecure = try await runWarden(
                    [
                        "oauth", "provider", "set", "bad", "--org", "acme", "--client-id", "x", "--authorize-url", "http://example.com/a",
                        "--token-url",
                        "https://example.com/t",
                    ], url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
                #expect(insecure.status != 0 && insecure.output.contains("https"), "\(insecure.output)")
                // Nobody writes a connection's records as plain secrets.
                let forged = try await CredentialInjectionTests().admin(
                    mesh, .POST, "/admin/v1/secrets",
                    #"{"org": "acme", "path": "oauth/saas/grant", "value": "\#(Data("forged-grant".utf8).base64EncodedString())"}"#)
                #expect(forged.status == 400 && forged.body.contains("warden oauth"), "\(forged.body)")
                // Nor does a server get a grant's refresh token by naming its record.
                let stealing = try await CredentialInjectionTests().admin(
                    mesh, .POST, "/admin/v1/servers",
                    #"{"id": "thief", "org": "acme", "url": "\#(saas.mcp)", "headers": {"X-Grant": "${secret://users/u1/oauth/saas/grant}"}}"#)
                #expect(stealing.status == 400 && stealing.body.contains("oauth://NAME"), "\(stealing.body)")

                let server = try await CredentialInjectionTests().admin(
                    mesh, .POST, "/admin/v1/servers",
                    #"{"id": "saas", "org": "acme", "url": "\#(saas.mcp)", "headers": {"Authorization": "Bearer ${oauth://saas}"}}"#)
                #expect(server.status == 201 && server.body.contains("oauth://saas"), "\(server.body)")
                let inEnvironment = try await CredentialInjectionTests().admin(
                    mesh, .POST, "/admin/v1/servers", #"{"id": "local", "org": "acme", "command": "true", "env": {"TOKEN": "oauth://saas"}}"#)
                #expect(inEnvironment.status == 400 && inEnvironment.body.contains("go in headers"), "\(inEnvironment.body)")

                // Before anyone connected: a clear error naming the command.
                let unconnected = try await call(mesh.gatewayURL, ["whoami"])
                #expect(
                    unconnected.status != 0 && unconnected.output.contains("not connected")
                        && unconnected.output.contains("warden oauth connect saas --org acme"), "\(unconnected.output)")

                // The operator connects once, in a browser.
                let connect = try await warden(mesh, ["oauth", "connect", "saas", "--org", "acme"])
                let link = try #require(connect.split(separator: "\n").first { $0.hasPrefix("http") }.map(String.init), "\(connect)")
                #expect(link.contains("code_challenge_method=S256") && link.contains("state="), "\(link)")
                let signedIn = try await signIn(link, as: "operator")
                #expect(signedIn.status == 200 && signedIn.page.contains("Connected"), "\(signedIn.page)")
                #expect(signedIn.callback.hasPrefix(mesh.gatewayURL + OAuthEndpoints.callbackPath), "\(signedIn.callback)")
                let replayed = try await HTTPClient.shared.execute(HTTPClientRequest(url: signedIn.callback), timeout: .seconds(10))
                #expect(replayed.status == .badRequest, "a sign-in redirect works once")
                let connectedAt = ContinuousClock.now
                // Someone who declines at the provider is told so; the link is used up.
                let declined = try await warden(mesh, ["oauth", "connect", "saas", "--org", "acme"])
                let state = try #require(
                    declined.split(separator: "\n").first { $0.hasPrefix("http") }?.split(separator: "&").first { $0.hasPrefix("state=") })
                let refusal = try await HTTPClient.shared.execute(
                    HTTPClientRequest(
                        url: mesh.gatewayURL + OAuthEndpoints.callbackPath + "?\(state)&error=access_denied&error_description=The%20user%20said%20no"),
                    timeout: .seconds(10))
                let refusalPage = String(buffer: try await refusal.body.collect(upTo: 1 << 16))
                #expect(
                    refusal.status == .badRequest && refusalPage.contains("did not authorize") && refusalPage.contains("The user said no"),
                    "\(refusalPage)")

                let first = await eventually(timeout: .seconds(30)) {
                    (try? await call(mesh.gatewayURL, ["whoami"]))?.answers["whoami"]?["text"] as? String == "saas user operator"
                }
                #expect(first, "a call uses the connection")
                let echoed = try await call(secondURL, ["bearer"])
                #expect(((echoed.answers["bearer"]?["text"] as? String) ?? "").contains("[redacted:oauth://saas]"), "\(echoed.output)")
                for token in try await saas.issuedTokens() { #expect(!echoed.output.contains(token), "the agent received the access token") }
                let status = try await warden(mesh, ["oauth", "status", "saas", "--org", "acme"])
                #expect(status.contains("connected"), "\(status)")
                #expect(try await saas.stats()["refresh_token"] == 0)

                // The token expires; calls on both replicas at once (on two vault replicas) all
                // succeed, and the provider sees one refresh.
                try await Task.sleep(until: connectedAt + .seconds(Self.tokenSeconds + 1))
                async let onFirst = runPythonCheck(
                    "mcp_concurrent_check.py", [mesh.gatewayURL + "/mcp", "saas", "whoami", "12"], timeout: .seconds(90))
                async let onSecond = runPythonCheck("mcp_concurrent_check.py", [secondURL + "/mcp", "saas", "whoami", "12"], timeout: .seconds(90))
                for run in [try await onFirst, try await onSecond] {
                    let vaultLogs = ["vault", "vault-2"].map { mesh.processes[$0]?.output.suffix(2000) ?? "" }.joined(separator: "\n---\n")
                    #expect(run.status == 0, "\(run.output)\nvault logs:\n\(vaultLogs)")
                    let line = run.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
                    let results = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [String]]) ?? [:]
                    #expect(results["texts"] == Array(repeating: "saas user operator", count: 12) && results["errors"] == [], "\(run.output)")
                }
                let afterRefresh = try await saas.stats()
                #expect(afterRefresh["refresh_token"] == 1 && afterRefresh["refused"] == 0, "one refresh, none refused: \(afterRefresh)")

                // A per-user server: the agent's user connects their own account; the org's grant
                // is never used in its place.
                let users = try await warden(mesh, ["user", "list", "--org", "acme"])
                let user = try #require(
                    users.split(separator: "\n").first { $0.contains("ada@acme.example") }?.split(separator: " ").first.map(String.init))
                let mine = try await CredentialInjectionTests().admin(
                    mesh, .POST, "/admin/v1/servers",
                    #"{"id": "mine", "org": "acme", "perUser": true, "url": "\#(saas.mcp)", "headers": {"Authorization": "Bearer ${oauth://saas}"}}"#)
                #expect(mine.status == 201, "\(mine.body)")
                let notYet = try await runPythonCheck("mcp_credential_check.py", [secondURL + "/mcp", "mine", "whoami"], timeout: .seconds(90))
                #expect(
                    notYet.status != 0 && notYet.output.contains("warden oauth connect saas --org acme --user \(user)"), "\(notYet.output)")
                let own = try await warden(mesh, ["oauth", "connect", "saas", "--org", "acme", "--user", user])
                let ownLink = try #require(own.split(separator: "\n").first { $0.hasPrefix("http") }.map(String.init), "\(own)")
                #expect(try await signIn(ownLink, as: "ada").status == 200)
                let both = try await runPythonCheck("mcp_credential_check.py", [secondURL + "/mcp", "mine", "whoami"], timeout: .seconds(90))
                #expect(both.output.contains("saas user ada"), "\(both.output)")
                let orgs = try await call(mesh.gatewayURL, ["whoami"])
                #expect(orgs.answers["whoami"]?["text"] as? String == "saas user operator", "\(orgs.output)")

                #expect(try await saas.stats()["authorization_code"] == 2, "the org's grant and the user's")

                // The user withdraws the app at the provider: once the token is due, calls fail with
                // what to do, and the operator gets an audit event.
                try await saas.revokeRefreshTokens()
                var failure = ""
                let refused = await eventually(timeout: .seconds(Double(Self.tokenSeconds) * 2)) {
                    let run = try? await call(secondURL, ["whoami"])
                    failure = run?.output ?? ""
                    return failure.contains("must be connected again")
                }
                #expect(refused, "\(failure)")
                #expect(failure.contains("invalid_grant") && failure.contains("warden oauth connect saas --org acme"), "\(failure)")
                let statusAfter = try await warden(mesh, ["oauth", "status", "saas", "--org", "acme"])
                #expect(statusAfter.contains("needs connecting again"), "\(statusAfter)")
                let event = try await lastAuditEvent(mesh)
                #expect(
                    event?.action == "oauth.refresh_failed" && event?.org == "acme" && event?.target.contains("saas") == true,
                    "\(String(describing: event))")
                #expect(try await saas.stats()["refused"] == 1, "a refused grant is not tried again")
                // No other service can write an event in the vault's name; each writes under its own.
                let policy = try await mesh.nats.connect(as: .policy, name: "test-policy")
                defer { policy.close() }
                let forgedEvent = try EnvelopeCoding.encoder().encode(
                    AuditEvent(
                        service: .vault, action: "oauth.connected", outcome: .success, org: "acme", actor: "forger", target: "x", detail: "forged"))
                await #expect(throws: (any Error).self) {
                    _ = try await policy.jetStreamPublish(AuditStream.subject(of: .vault), payload: forgedEvent, timeout: .seconds(2))
                }
                let ownEvent = try await policy.jetStreamPublish(AuditStream.subject(of: .policy), payload: forgedEvent, timeout: .seconds(5))
                #expect(ownEvent.stream == AuditStream.name)
                #expect(try await lastAuditEvent(mesh)?.actor == Self.refreshActor, "the vault's last event is its own")

                // Connecting again brings it back.
                let again = try await warden(mesh, ["oauth", "connect", "saas", "--org", "acme"])
                let relink = try #require(again.split(separator: "\n").first { $0.hasPrefix("http") }.map(String.init))
                #expect(try await signIn(relink, as: "operator").status == 200)
                let back = await eventually(timeout: .seconds(30)) {
                    (try? await call(mesh.gatewayURL, ["whoami"]))?.answers["whoami"]?["text"] as? String == "saas user operator"
                }
                #expect(back, "calls work again after connecting again")

                // Neither the database nor a log holds a token or the client secret.
                let dump = try await VaultSecretsTests().dump(mesh)
                for value in try await saas.issuedTokens() + ["test-client-secret-0123456789"] {
                    #expect(!dump.contains(value), "the database dump holds a token")
                    for (name, child) in mesh.processes { #expect(!child.output.contains(value), "the log of \(name) holds a token") }
                }
            }
        }
    }

    @Test func aProviderThatIsDownLeavesTheCurrentTokenInUseUntilItExpires() async throws {
        let lifetime = 15
        let saas = try await startSaaS(tokenSeconds: lifetime)
        defer { kill(saas.process.pid, SIGKILL) }
        try await withMesh { mesh in
            try mesh.start(.vault, extra: ["WARDEN_OAUTH_ALLOW_LOOPBACK_HTTP": "true"])
            try mesh.start(.gateway)
            try await mesh.withAgent {
                _ = try await warden(
                    mesh,
                    [
                        "oauth", "provider", "set", "saas", "--org", "acme", "--client-id", "warden-test", "--authorize-url",
                        saas.authorizationServer + "/authorize", "--token-url", saas.authorizationServer + "/token",
                    ])
                let server = try await CredentialInjectionTests().admin(
                    mesh, .POST, "/admin/v1/servers",
                    #"{"id": "saas", "org": "acme", "url": "\#(saas.mcp)", "headers": {"Authorization": "Bearer ${oauth://saas}"}}"#)
                #expect(server.status == 201, "\(server.body)")
                // A public client (no secret): this provider wants one, so connecting fails and says why.
                let publicLink = try await warden(mesh, ["oauth", "connect", "saas", "--org", "acme"])
                let refusedPage = try await signIn(
                    try #require(publicLink.split(separator: "\n").first { $0.hasPrefix("http") }.map(String.init)), as: "operator")
                #expect(refusedPage.status == 400 && refusedPage.page.contains("refused to connect"), "\(refusedPage.page)")

                let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("oauth-client-\(UUID().uuidString)")
                try Data("test-client-secret-0123456789".utf8).write(to: secretFile)
                defer { try? FileManager.default.removeItem(at: secretFile) }
                _ = try await warden(
                    mesh,
                    [
                        "oauth", "provider", "set", "saas", "--org", "acme", "--client-id", "warden-test", "--client-secret-file", secretFile.path,
                        "--authorize-url", saas.authorizationServer + "/authorize", "--token-url", saas.authorizationServer + "/token",
                    ])
                let link = try await warden(mesh, ["oauth", "connect", "saas", "--org", "acme"])
                #expect(
                    try await signIn(try #require(link.split(separator: "\n").first { $0.hasPrefix("http") }.map(String.init)), as: "operator").status
                        == 200)
                let connectedAt = ContinuousClock.now
                #expect((try await call(mesh.gatewayURL, ["whoami"])).answers["whoami"]?["text"] as? String == "saas user operator")

                // Down when the token is due: the current one is still served.
                try await saas.outage(true)
                try await Task.sleep(until: connectedAt + .seconds(Double(lifetime) * 2 / 3 + 0.5))
                let whileDown = try await call(mesh.gatewayURL, ["whoami"])
                #expect(whileDown.answers["whoami"]?["text"] as? String == "saas user operator", "\(whileDown.output)")
                #expect(try await saas.stats()["unavailable"] ?? 0 >= 1, "a refresh was tried")

                // Expired and still down: a clear error, and the grant is kept.
                try await Task.sleep(until: connectedAt + .seconds(lifetime + 1))
                let expired = try await call(mesh.gatewayURL, ["whoami"])
                #expect(expired.output.contains("did not refresh its token") && expired.output.contains("HTTP 503"), "\(expired.output)")
                #expect(!expired.output.contains("connected again"), "\(expired.output)")

                // Back up: the next call refreshes and succeeds.
                try await saas.outage(false)
                let back = await eventually(timeout: .seconds(20)) {
                    (try? await call(mesh.gatewayURL, ["whoami"]))?.answers["whoami"]?["text"] as? String == "saas user operator"
                }
                #expect(back, "calls work once the provider is back")
                let stats = try await saas.stats()
                #expect(stats["refresh_token"] == 1 && stats["refused"] == 1, "one refresh, and the public client's refused exchange: \(stats)")

                // Disconnecting ends it at once, on the next call.
                _ = try await warden(mesh, ["oauth", "disconnect", "saas", "--org", "acme"])
                let gone = await eventually(timeout: .seconds(10)) {
                    (try? await call(mesh.gatewayURL, ["whoami"]))?.output.contains("is not connected") == true
                }
                #expect(gone, "a disconnected connection fails with what to do")
                #expect(try await warden(mesh, ["oauth", "status", "saas", "--org", "acme"]).contains("not connected"))
            }
        }
    }

    /// The newest event the vault wrote to the audit stream.
    func lastAuditEvent(_ mesh: TestMesh) async throws -> AuditEvent? {
        let bus = try await mesh.nats.connect(as: .gateway)
        defer { bus.close() }
        let reply = try await bus.request(
            "$JS.API.STREAM.MSG.GET.\(AuditStream.name)", payload: Data(#"{"last_by_subj": "warden.audit.events.vault"}"#.utf8), headers: [:],
            timeout: .seconds(5))
        struct Stored: Decodable {
            struct Message: Decodable { var data: String }
            var message: Message
        }
        guard let stored = try? JSONDecoder().decode(Stored.self, from: reply.payload), let data = Data(base64Encoded: stored.message.data) else {
            Issue.record("no audit event: \(String(decoding: reply.payload, as: UTF8.self))")
            return nil
        }
        return try EnvelopeCoding.decoder().decode(AuditEvent.self, from: data)
    }
}
