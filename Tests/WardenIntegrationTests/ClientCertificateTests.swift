import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WardenContracts

/// mTLS identity through a trusted reverse proxy: the gateway believes `X-Forwarded-Client-Cert`
/// only from the configured proxy addresses, and only for enabled agents of the named org.
@Suite(.serialized) struct ClientCertificateTests {
    static let initialize =
        #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#

    func post(_ url: String, _ body: String = initialize, certificate: String?, bearer: String? = nil, session: String? = nil) async throws
        -> (status: Int, body: String, session: String?, challenge: String?)
    {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        if let certificate { request.headers.add(name: "X-Forwarded-Client-Cert", value: certificate) }
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        if let session { request.headers.add(name: "Mcp-Session-Id", value: session) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return (
            Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)), response.headers.first(name: "Mcp-Session-Id"),
            response.headers.first(name: "WWW-Authenticate")
        )
    }

    static func certificate(org: String, agent: String, domain: String = "warden.test") -> String {
        #"By=spiffe://warden.test/proxy;Hash=0f1e2d;Subject="CN=\#(agent),O=\#(org)";URI=spiffe://\#(domain)/org/\#(org)/agent/\#(agent)"#
    }

    @Test func aTrustedProxysCertificateIdentifiesTheAgentAndNobodyElseCanClaimOne() async throws {
        try await withMesh { mesh in
            try mesh.start(.vault)
            try mesh.start(.policy)
            let admin = AgentAuthenticationTests.adminToken
            let untrustedPort = freePort()
            let mtls = ["WARDEN_MTLS_TRUST_DOMAIN": "warden.test", "WARDEN_ADMIN_TOKEN": admin, "WARDEN_AUTH_REQUIRED": "true"]
            try mesh.start(.gateway, extra: mtls.merging(["WARDEN_MTLS_TRUSTED_PROXIES": "127.0.0.1, ::1"]) { $1 })
            // The second replica trusts only a proxy elsewhere: our requests come straight from a client.
            try mesh.start(
                .gateway, name: "gateway-2",
                extra: mtls.merging(["WARDEN_MTLS_TRUSTED_PROXIES": "10.0.0.0/8", "WARDEN_HTTP_PORT": "\(untrustedPort)"]) { $1 })
            try await mesh.waitFor("the vault and policy") { status in
                status.services.filter { [.vault, .policy].contains($0.service) }.allSatisfy { $0.status == .up }
            }
            let (_, agents) = try await AgentAuthenticationTests.principals(mesh, agents: 2)
            let trusted = mesh.gatewayURL + "/mcp", untrusted = "http://127.0.0.1:\(untrustedPort)/mcp"
            try await waitUntilServing(untrusted)

            // From the trusted proxy: the certificate's agent opens a session and uses it.
            let opened = try await post(trusted, certificate: Self.certificate(org: "acme", agent: agents[0]))
            #expect(opened.status == 200, "\(opened.body)")
            let session = try #require(opened.session)
            let ping = #"{"jsonrpc":"2.0","id":2,"method":"ping"}"#
            #expect(try await post(trusted, ping, certificate: Self.certificate(org: "acme", agent: agents[0]), session: session).status == 200)
            // The session is bound to that agent: another agent's certificate does not reach it.
            #expect(try await post(trusted, ping, certificate: Self.certificate(org: "acme", agent: agents[1]), session: session).status == 404)

            // From anywhere else the header is ignored: no credential.
            let forged = try await post(untrusted, certificate: Self.certificate(org: "acme", agent: agents[0]))
            #expect(forged.status == 401 && forged.body.contains("accepted only from trusted proxies"), "\(forged.body)")
            #expect(forged.challenge?.contains("resource_metadata=") == true)

            // Certificates that name nobody we know, precisely refused.
            let refusals: [(String, String)] = [
                (Self.certificate(org: "acme", agent: agents[0], domain: "other.test"), "trust domain"),
                (Self.certificate(org: "globex", agent: agents[0]), "no enabled agent of org 'globex'"),
                (Self.certificate(org: "acme", agent: "agt_000000000000"), "no enabled agent"),
                ("Hash=abc;Subject=\"CN=x\"", "no URI SAN"),
                ("URI=spiffe://warden.test/ns/default/sa/agent", "SPIFFE ID must be spiffe:"),
            ]
            for (header, reason) in refusals {
                let refused = try await post(trusted, certificate: header)
                #expect(refused.status == 401 && refused.body.contains(reason), "\(header): \(refused.body)")
            }
            // An explicit bearer credential wins over a forwarded certificate.
            let both = try await post(trusted, certificate: Self.certificate(org: "acme", agent: agents[0]), bearer: "not-a-token")
            #expect(both.status == 401 && both.challenge?.contains("invalid_token") == true, "\(both.body)")

            // Disabling the agent ends its certificate identity at once, mid-session.
            try await AgentAuthenticationTests.warden(["agent", "disable", "--org", "acme", agents[0]], mesh)
            let afterDisable = try await post(trusted, ping, certificate: Self.certificate(org: "acme", agent: agents[0]), session: session)
            #expect(afterDisable.status == 401 && afterDisable.body.contains("no enabled agent"), "\(afterDisable.body)")
        }
    }

    func waitUntilServing(_ url: String) async throws {
        let ready = await eventually(timeout: .seconds(20)) { ((try? await self.post(url, certificate: nil))?.status ?? 0) == 401 }
        #expect(ready, "\(url) answers")
    }
}
