import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WardenContracts

#if canImport(Glibc)
    import Glibc
#endif

/// Warden as the OAuth 2.1 authorization server of MCP clients, through the real processes: the
/// official Python SDK's OAuth client signing a user in (discovery, registration, the pages, token,
/// a tool call, refresh, revocation), and every refusal the issue names.
@Suite(.serialized) struct AuthorizationServerTests {
    static let password = "correct horse battery staple"

    func warden(_ mesh: TestMesh, _ arguments: [String], stdin: String? = nil) async throws -> String {
        var arguments = arguments
        var passwordFile: URL?
        if let stdin {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("password-\(UUID().uuidString)")
            try Data(stdin.utf8).write(to: file)
            passwordFile = file
            arguments += ["--password-file", file.path]
        }
        defer { passwordFile.map { try? FileManager.default.removeItem(at: $0) } }
        let (status, output) = try await runWarden(arguments, url: mesh.gatewayURL, adminToken: TestMesh.adminToken)
        #expect(status == 0, "warden \(arguments.joined(separator: " ")): \(output)")
        return output
    }

    static func file(_ contents: String) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("password-\(UUID().uuidString)")
        try Data(contents.utf8).write(to: file)
        return file.path
    }

    func report(_ output: String) -> [String: Any] {
        let line = output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
    }

    /// Starts a mesh with a tool server for org acme, and a password for its owner (and for a second user).
    func start(_ mesh: TestMesh, extra: [String: String] = [:], vault: [String: String]? = nil) async throws -> (owner: String, second: String) {
        if let vault { try mesh.start(.vault, extra: vault) }
        try mesh.start(.gateway, extra: extra)
        try mesh.start(.audit)
        try mesh.start(.approvals)
        return try await mesh.withAgent {
            let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/policy_tools_server.py").path
            _ = try await warden(mesh, ["server", "add", "corp", "--org", "acme", "--command", try StdioServerTests.python, "--arg", script])
            let users = try JSONDecoder().decode(UserList.self, from: Data(try await warden(mesh, ["user", "list", "--org", "acme", "--json"]).utf8))
            let owner = try #require(users.users.first { $0.email == "ada@acme.example" }).id
            let second = try await warden(mesh, ["user", "add", "--org", "acme", "--email", "grace@acme.example"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            _ = try await warden(mesh, ["user", "set-password", owner, "--org", "acme"], stdin: Self.password + "\n")
            _ = try await warden(mesh, ["user", "set-password", second, "--org", "acme"], stdin: Self.password)
            let tooShort = try await runWarden(
                ["user", "set-password", owner, "--org", "acme", "--password-file", try Self.file("short")], url: mesh.gatewayURL,
                adminToken: TestMesh.adminToken)
            #expect(tooShort.status != 0 && tooShort.output.contains("at least 12 characters"), "\(tooShort.output)")
            return (owner, second)
        }
    }

    @Test func theOfficialSDKSignsInThroughWardenCallsAToolRefreshesAndRevokes() async throws {
        try await withMesh { mesh in
            let (owner, _) = try await start(mesh)
            let run = try await runPythonCheck(
                "oauth_client_check.py", [mesh.gatewayURL, "acme", "ada@acme.example", Self.password, "corp__web_search"], timeout: .seconds(120))
            #expect(run.status == 0, "\(run.output)")
            let report = report(run.output)
            #expect((report["tools"] as? [String])?.contains("corp__web_search") == true, "\(run.output)")
            #expect((report["call"] as? [String: Any])?["text"] as? String == #"ran web_search {"query": ""}"#, "\(run.output)")
            #expect((report["client_id"] as? String)?.hasPrefix("wdc_") == true, "registered dynamically: \(run.output)")
            let redirect = report["redirect"] as? [String: String]
            #expect(redirect?["iss"] == mesh.gatewayURL, "the redirect names the issuer (RFC 9207): \(run.output)")
            #expect(report["has_refresh_token"] as? Bool == true && report["refreshed"] as? Bool == true, "\(run.output)")
            #expect(report["refresh_rotated"] as? Bool == true, "refresh tokens rotate on every use: \(run.output)")
            #expect(report["authorizations"] as? Int == 1, "one sign-in for the whole session: \(run.output)")
            #expect(report["revoke_status"] as? Int == 200, "\(run.output)")
            let afterRevoke = report["refresh_after_revoke"] as? [String: Any]
            #expect((afterRevoke?["body"] as? [String: Any])?["error"] as? String == "invalid_grant", "\(run.output)")
            #expect(report["access_after_revoke"] as? Int == 401, "revoking the grant ends its access tokens: \(run.output)")

            // The consent is on record, and the admin CLI lists it; its agent is the client's, for the user.
            let consents = try await warden(mesh, ["user", "consents", owner, "--org", "acme"])
            #expect(consents.contains("SDK flow check"), "\(consents)")
            let agents = try await warden(mesh, ["agent", "list", "--org", "acme"])
            #expect(agents.contains("SDK flow check #"), "\(agents)")
            let clientID = try #require(report["client_id"] as? String)
            let withdrawn = try await warden(mesh, ["user", "revoke-consent", owner, "--org", "acme", "--client", clientID])
            #expect(withdrawn.contains("withdrew"), "\(withdrawn)")
            let none = try await warden(mesh, ["user", "consents", owner, "--org", "acme"])
            #expect(none.contains("no connected clients"), "\(none)")
            func events() async throws -> [AuditEvent] {
                let json = try await warden(mesh, ["audit", "query", "--org", "acme", "--limit", "1000", "--json"])
                return try EnvelopeCoding.decoder().decode(AuditRecordPage.self, from: Data(json.utf8)).records.map(\.event)
            }
            let recorded = await eventually(timeout: .seconds(30)) {
                ((try? await events()) ?? []).contains { $0.action == "oauth.consent.withdrawn" }
            }
            #expect(recorded, "the withdrawal is on record")
            let events = try await events()
            #expect(events.contains { $0.action == "oauth.consent.granted" && $0.actor == "user:\(owner)" }, "\(events.map(\.action))")
            #expect(events.contains { $0.action == "token.issued" && $0.actor == "oauth-client:\(clientID)" }, "\(events.map(\.action))")
        }
    }

    @Test func refusesWhatItMustWithTheErrorsTheRFCsName() async throws {
        try await withMesh { mesh in
            let metadataPort = freePort()
            let (_, _) = try await start(mesh, extra: ["WARDEN_OAUTH_METADATA_ALLOWED_ORIGINS": "http://localhost:\(metadataPort)"])
            let registered = try await warden(
                mesh, ["oauth", "client", "add", "--org", "acme", "--name", "Registered App", "--redirect-uri", "https://app.example/cb"]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(registered.hasPrefix("wdc_"), "\(registered)")
            let listed = try await warden(mesh, ["oauth", "client", "list", "--org", "acme"])
            #expect(listed.contains("Registered App") && listed.contains("https://app.example/cb"), "\(listed)")
            let badRedirect = try await runWarden(
                ["oauth", "client", "add", "--org", "acme", "--name", "Bad", "--redirect-uri", "http://example.com/cb"], url: mesh.gatewayURL,
                adminToken: TestMesh.adminToken)
            #expect(badRedirect.status != 0 && badRedirect.output.contains("loopback"), "\(badRedirect.output)")

            let run = try await runPythonCheck(
                "oauth_negative_check.py",
                [mesh.gatewayURL, "acme", "ada@acme.example", Self.password, "grace@acme.example", registered, "\(metadataPort)"],
                timeout: .seconds(180))
            #expect(run.status == 0, "\(run.output)")
            let report = report(run.output)
            func entry(_ name: String) -> [String: Any] { report[name] as? [String: Any] ?? [:] }
            func status(_ name: String) -> Int? { entry(name)["status"] as? Int }

            // Discovery documents carry their RFCs' required fields.
            let documents = entry("documents")
            let authorizationServer = documents["/.well-known/oauth-authorization-server"] as? [String: Any] ?? [:]
            for field in ["issuer", "authorization_endpoint", "token_endpoint", "response_types_supported", "registration_endpoint", "jwks_uri"] {
                #expect(authorizationServer[field] != nil, "RFC 8414 needs \(field): \(authorizationServer)")
            }
            #expect(authorizationServer["issuer"] as? String == mesh.gatewayURL)
            #expect(authorizationServer["code_challenge_methods_supported"] as? [String] == ["S256"])
            let openID = documents["/.well-known/openid-configuration"] as? [String: Any] ?? [:]
            for field in [
                "issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported", "subject_types_supported",
                "id_token_signing_alg_values_supported",
            ] {
                #expect(openID[field] != nil, "OpenID discovery needs \(field): \(openID)")
            }
            for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
                let resource = documents[path] as? [String: Any] ?? [:]
                #expect(resource["resource"] as? String == mesh.gatewayURL + "/mcp", "RFC 9728 needs resource: \(resource)")
                #expect(resource["authorization_servers"] as? [String] == [mesh.gatewayURL], "\(resource)")
            }

            // Registration.
            #expect(report["register_without_redirect"] as? String == "invalid_redirect_uri", "\(run.output)")
            #expect(report["register_javascript_redirect"] as? String == "invalid_redirect_uri", "\(run.output)")
            #expect(report["register_remote_http_redirect"] as? String == "invalid_redirect_uri", "\(run.output)")
            #expect(entry("register_secret_method")["method"] as? String == "none", "a public client: \(run.output)")

            // Redirects: unregistered or mismatched ones get a page, never a redirect.
            for name in ["unregistered_redirect", "mismatched_redirect", "unknown_client"] {
                #expect(status(name) == 400 && (entry(name)["location"] ?? NSNull()) is NSNull, "\(name): \(run.output)")
            }
            #expect(report["loopback_any_port"] as? Int == 200, "a loopback redirect matches any port: \(run.output)")
            let errorPage = entry("dynamic_error_page")
            #expect(errorPage["status"] as? Int == 400 && (errorPage["location"] ?? NSNull()) is NSNull, "no open redirect: \(run.output)")
            #expect(errorPage["names_error"] as? Bool == true && errorPage["links_back"] as? Bool == true, "\(run.output)")
            #expect(entry("prompt_none_signed_out")["error"] as? String == "login_required", "\(run.output)")
            let redirected: [(String, String)] = [
                ("missing_pkce", "invalid_request"), ("plain_pkce", "invalid_request"), ("foreign_resource", "invalid_target"),
                ("token_response_type", "unsupported_response_type"), ("unknown_scope", "invalid_scope"),
            ]
            for (name, error) in redirected {
                #expect(status(name) == 303 && entry(name)["error"] as? String == error, "\(name): \(run.output)")
                #expect(entry(name)["state"] as? String == "st-42" && entry(name)["iss"] as? String == mesh.gatewayURL, "\(name): \(run.output)")
            }

            // The pages: not frameable, not cached, cookies HttpOnly and SameSite=Lax; CSRF checked.
            let headers = entry("consent_headers")
            #expect((headers["csp"] as? String)?.contains("frame-ancestors 'none'") == true, "\(headers)")
            #expect(headers["x_frame_options"] as? String == "DENY" && headers["cache_control"] as? String == "no-store", "\(headers)")
            #expect(headers["cookie"] as? String == "warden_session", "a loopback http gateway: no __Host- prefix: \(headers)")
            let attributes = headers["cookie_attributes"] as? String ?? ""
            #expect(attributes.contains("HttpOnly") && attributes.contains("SameSite=Lax"), "\(attributes)")
            #expect(report["consent_without_csrf"] as? Int == 403 && report["consent_wrong_csrf"] as? Int == 403, "\(run.output)")
            #expect(entry("approved")["state"] as? String == "st-42", "state comes back as given: \(run.output)")

            // Codes and refresh tokens.
            #expect(entry("wrong_verifier")["error"] as? String == "invalid_grant", "\(run.output)")
            #expect(entry("right_after_wrong")["error"] as? String == "invalid_grant", "a wrong verifier spends the code: \(run.output)")
            #expect(report["exchange_without_redirect"] as? String == "invalid_grant", "named at authorization, repeated: \(run.output)")
            #expect(report["exchange_other_redirect"] as? String == "invalid_grant", "\(run.output)")
            #expect(report["exchange_other_client"] as? String == "invalid_grant", "\(run.output)")
            #expect(report["exchange_foreign_resource"] as? String == "invalid_target", "\(run.output)")
            let promptLogin = entry("prompt_login")
            #expect(promptLogin["asked"] as? Bool == true && promptLogin["next_has_prompt"] as? Bool == false, "\(run.output)")
            #expect(promptLogin["then"] as? Int == 303, "signed in again, the remembered consent answers: \(run.output)")
            #expect(entry("prompt_none_remembered")["status"] as? Int == 303 && entry("prompt_none_remembered")["error"] is NSNull, "\(run.output)")
            #expect(report["remembered"] as? Int == 303, "a remembered consent answers at once: \(run.output)")
            #expect(entry("exchange")["has_refresh"] as? Bool == true && report["access_works"] as? Int == 200, "\(run.output)")
            #expect(entry("reused_code")["error"] as? String == "invalid_grant", "\(run.output)")
            #expect(report["access_after_reused_code"] as? Int == 401, "a reused code revokes what the first use got: \(run.output)")
            #expect(report["refresh_after_reused_code"] as? String == "invalid_grant", "\(run.output)")
            #expect(entry("refresh")["rotated"] as? Bool == true, "\(run.output)")
            #expect(report["refresh_foreign_resource"] as? String == "invalid_target", "\(run.output)")
            #expect(entry("reused_refresh")["error"] as? String == "invalid_grant", "\(run.output)")
            #expect(report["rotated_after_reuse"] as? String == "invalid_grant", "a reused refresh token revokes the family: \(run.output)")
            #expect(report["access_after_reuse"] as? Int == 401, "\(run.output)")
            let introspection = entry("introspect")
            #expect(introspection["own"] as? Bool == true && introspection["refresh"] as? Bool == true, "\(run.output)")
            #expect(introspection["other"] as? Bool == false && introspection["aud"] as? String == mesh.gatewayURL + "/mcp", "\(run.output)")

            // Metadata documents.
            #expect(entry("cimd_ok")["metadata_client"] as? Bool == true, "\(run.output)")
            #expect(entry("cimd_oversized")["oversized"] as? Bool == true, "\(run.output)")
            #expect(entry("cimd_loopback")["private"] as? Bool == true, "\(run.output)")
            #expect(entry("cimd_link_local")["private"] as? Bool == true, "\(run.output)")

            // Consents withdrawn by the user end the client's tokens.
            #expect(entry("consents_page")["lists"] as? Bool == true, "\(run.output)")
            #expect(entry("withdrawn")["lists"] as? Bool == false && entry("withdrawn")["notice"] as? Bool == true, "\(run.output)")
            #expect(
                report["access_after_withdrawal"] as? Int == 401 && report["refresh_after_withdrawal"] as? String == "invalid_grant", "\(run.output)")

            // Guessing a password.
            let guessing = entry("guessing")
            #expect(guessing["statuses"] as? [Int] == [401, 401, 401, 401, 401, 429], "\(run.output)")
            #expect(guessing["says"] as? Bool == true, "\(run.output)")

            // Another org's admin can neither see nor remove acme's registered client.
            _ = try await warden(mesh, ["org", "create", "globex"])
            let globexOwner = try await warden(mesh, ["user", "add", "--org", "globex", "--email", "boss@globex.example", "--role", "owner"])
            let globexAdmin = try await warden(mesh, ["user", "admin-token", "--org", "globex", globexOwner])
            let foreign = try await runWarden(
                ["oauth", "client", "remove", "--org", "globex", registered], url: mesh.gatewayURL, adminToken: globexAdmin)
            #expect(foreign.status != 0 && foreign.output.contains("no client"), "\(foreign.output)")
            let across = try await runWarden(
                ["oauth", "client", "remove", "--org", "acme", registered], url: mesh.gatewayURL, adminToken: globexAdmin)
            #expect(across.status != 0, "\(across.output)")
            let stillThere = try await warden(mesh, ["oauth", "client", "list", "--org", "acme"])
            #expect(stillThere.contains(registered), "\(stillThere)")
            let removed = try await warden(mesh, ["oauth", "client", "remove", "--org", "acme", registered])
            #expect(removed.contains("removed"), "\(removed)")

            // An org that accepts only the clients its admins registered.
            let setting = try await warden(mesh, ["oauth", "registration", "--org", "acme", "--dynamic-clients", "false"])
            #expect(setting.contains("refused"), "\(setting)")
            let refused = try await runPythonCheck(
                "oauth_negative_check.py", [mesh.gatewayURL, "acme", "ada@acme.example", Self.password, "--dynamic-refused"], timeout: .seconds(60))
            let dynamic = self.report(refused.output)["dynamic_refused"] as? [String: Any] ?? [:]
            #expect(dynamic["status"] as? Int == 403 && dynamic["says"] as? Bool == true, "\(refused.output)")
        }
    }

    @Test func pagesWalkInChromiumWithAPasswordAndWithTheOrgsOwnProvider() async throws {
        let providerPort = freePort()
        let provider = try ChildProcess(
            name: "oidc-provider", executable: URL(fileURLWithPath: try StdioServerTests.python),
            arguments: [
                "-m", "oidc_provider_mock", "-p", "\(providerPort)", "--require-nonce", "--user-claims",
                #"{"sub": "lin", "email": "lin@globex.example", "email_verified": true, "groups": ["eng", "oncall"]}"#,
            ])
        defer { kill(provider.pid, SIGKILL) }
        let issuer = "http://127.0.0.1:\(providerPort)"
        let answering = await eventually(timeout: .seconds(30)) {
            (try? await HTTPClient.shared.execute(HTTPClientRequest(url: issuer + "/.well-known/openid-configuration"), timeout: .seconds(2)))?
                .status == .ok
        }
        #expect(answering, "the OpenID provider did not start: \(provider.output)")
        try await withMesh { mesh in
            // The provider under test listens on plain http at a loopback address, which the vault refuses unless told.
            _ = try await start(mesh, vault: ["WARDEN_OAUTH_ALLOW_LOOPBACK_HTTP": "true"])
            _ = try await warden(mesh, ["org", "create", "globex"])
            _ = try await warden(mesh, ["user", "add", "--org", "globex", "--email", "lin@globex.example"])
            let secret = try Self.file("provider-client-secret-0123456789\n")
            let set = try await warden(
                mesh,
                [
                    "oauth", "sign-in", "--org", "globex", "--oidc-issuer", issuer, "--client-id", "warden-globex", "--client-secret-file", secret,
                    "--roles-claim", "groups",
                ])
            #expect(set.contains("signs in at \(issuer)"), "\(set)")
            let shown = try await warden(mesh, ["oauth", "sign-in", "--org", "globex"])
            #expect(shown.contains("with a secret") && !shown.contains("provider-client-secret"), "\(shown)")

            let screenshots = FileManager.default.temporaryDirectory.appendingPathComponent("oauth-pages-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: screenshots) }
            let run = try await runPythonCheck(
                "oauth_pages_check.py", [mesh.gatewayURL, "ada@acme.example", Self.password, "lin", "\(freePort())", screenshots.path],
                timeout: .seconds(180))
            #expect(run.status == 0, "\(run.output)")
            let report = report(run.output)
            #expect(report["asks_org"] as? Bool == true, "two orgs: the page asks which: \(run.output)")
            #expect(report["sign_in_fits"] as? Bool == true && report["consent_fits"] as? Bool == true, "readable on a phone: \(run.output)")
            let consent = report["consent_text"] as? String ?? ""
            #expect(consent.contains("Pages Check") && consent.contains("127.0.0.1") && consent.contains("ada@acme.example"), "\(consent)")
            #expect(report["password_mcp_status"] as? Int == 200, "\(run.output)")
            #expect(report["framed_allow_buttons"] as? Int == 0, "the consent page does not render in a frame: \(run.output)")
            #expect(report["provider_page"] as? String == issuer + "/oauth2/authorize", "\(run.output)")
            #expect((report["federated_consent_text"] as? String)?.contains("lin@globex.example") == true, "\(run.output)")
            #expect(report["federated_mcp_status"] as? Int == 200, "\(run.output)")
            let federated = report["federated_claims"] as? [String: Any] ?? [:]
            #expect(
                federated["org"] as? String == "globex" && federated["roles"] as? [String] == ["eng", "oncall"],
                "the provider's roles: \(run.output)"
            )
            #expect((federated["client_id"] as? String)?.hasPrefix("wdc_") == true && federated["aud"] as? String == mesh.gatewayURL + "/mcp")
            let password = report["password_claims"] as? [String: Any] ?? [:]
            #expect(password["org"] as? String == "acme" && (password["roles"] ?? NSNull()) is NSNull, "\(run.output)")
            let expected = ["1-sign-in.png", "2-consent.png", "3-framed.png", "4-sign-in-choice.png", "5-provider.png", "6-federated-consent.png"]
            #expect(report["screenshots"] as? [String] == expected, "\(run.output)")
            for name in expected {
                let data = FileManager.default.contents(atPath: screenshots.appendingPathComponent(name).path) ?? Data()
                #expect(data.count > 1000 && data.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "\(name) is a PNG")
            }

            // An org that signs in at its provider refuses passwords; its users' sign-ins are on record.
            let refused = try await runPythonCheck(
                "oauth_negative_check.py", [mesh.gatewayURL, "globex", "lin@globex.example", Self.password, "--password-refused"],
                timeout: .seconds(60))
            let refusal = self.report(refused.output)["password_refused"] as? [String: Any] ?? [:]
            #expect(refusal["status"] as? Int == 403 && refusal["says"] as? Bool == true, "\(refused.output)")
            let json = try await warden(mesh, ["audit", "query", "--org", "globex", "--action", "user.signed-in", "--json"])
            #expect(json.contains("identity provider \(issuer)"), "\(json)")
        }
    }
}
