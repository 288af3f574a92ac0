import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import WardenContracts
import WardenIdentity
import WardenMCP
import WardenNATS
import WardenServiceKit

@testable import WardenGateway

/// The endpoint with authentication on, without processes: the vault's public keys come over an
/// in-memory message bus; tokens are signed here. Sessions belong to the agent that opened them.
@Suite struct AuthenticatedEndpointTests {
    static let publicURL = "https://warden.example"
    let key = SigningKey(kid: "k1")

    func token(agent: String, scope: String = "mcp", key: SigningKey? = nil) async throws -> String {
        let now = Int64(Date().timeIntervalSince1970)
        let claims = AgentTokenClaims(
            iss: Self.publicURL, aud: Self.publicURL + "/mcp", sub: agent, org: "acme", usr: "usr_1", scope: scope,
            jti: AgentTokenIssuer.newTokenID(), iat: now, nbf: now, exp: now + 900)
        return try await AgentTokenIssuer(key: key ?? self.key).sign(claims)
    }

    func withEndpoint(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let logger = Logger(label: "test")
        let bus = InMemoryMessageBus()
        let published = PublicSigningKeys(keys: [PublicSigningKey(kid: key.kid, x: Base64URL.encode(key.publicKey.rawPublicKey))])
        let vault = ServiceResponder(VaultEndpoints.publicKeys, bus: bus, logger: logger) { _, _ in published }
        let requests = try bus.subscribe(VaultEndpoints.publicKeys.subject, queue: VaultEndpoints.publicKeys.service.queueGroup)
        let authenticator = GatewayAuthenticator(
            publicURL: Self.publicURL, required: true, client: ServiceClient(bus: bus, caller: "gateway/test"), revocations: nil, logger: logger)
        let endpoint = MCPEndpoint(
            registry: DownstreamRegistry(supervisors: []), sessions: InMemorySessionStore(), events: InMemorySessionEventLog(),
            authenticator: authenticator, logger: logger)
        let router = Router(context: WardenRequestContext.self)
        endpoint.addRoutes(to: router)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { for await request in requests { await vault.handle(request) } }
            try await Application(router: router).test(.router, body)
            requests.unsubscribe()
        }
    }

    func post(_ client: any TestClientProtocol, _ body: String, token: String?, session: String? = nil) async throws -> (
        status: HTTPResponse.Status, body: String, headers: HTTPFields
    ) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        if let session { headers[.mcpSessionID] = session }
        return try await client.execute(uri: "/mcp", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            (response.status, String(buffer: response.body), response.headers)
        }
    }

    @Test func withoutAValidTokenNothingIsServed() async throws {
        let forged = try await token(agent: "agt_a", key: SigningKey(kid: "k1"))
        let narrow = try await token(agent: "agt_a", scope: "reports")
        try await withEndpoint { client in
            let anonymous = try await post(client, MCPEndpointTests.initialize, token: nil)
            #expect(anonymous.status == .unauthorized)
            #expect(
                anonymous.headers[.wwwAuthenticate]?.contains("resource_metadata=\"\(Self.publicURL)/.well-known/oauth-protected-resource\"") == true)
            let refused = try await post(client, MCPEndpointTests.initialize, token: forged)
            #expect(refused.status == .unauthorized && refused.body.contains("the signature is not valid"), "\(refused.body)")
            let scoped = try await post(client, MCPEndpointTests.initialize, token: narrow)
            #expect(scoped.status == .forbidden && scoped.body.contains("insufficient_scope"), "\(scoped.body)")
        }
    }

    @Test func aSessionBelongsToTheAgentThatOpenedIt() async throws {
        let owner = try await token(agent: "agt_a")
        let other = try await token(agent: "agt_b")
        try await withEndpoint { client in
            let opened = try await post(client, MCPEndpointTests.initialize, token: owner)
            let session = try #require(opened.headers[.mcpSessionID], "\(opened)")
            let ping = #"{"jsonrpc":"2.0","id":2,"method":"ping"}"#
            #expect(try await post(client, ping, token: owner, session: session).status == .ok)
            // Another agent naming it: "not found" for every verb, its existence not revealed.
            #expect(try await post(client, ping, token: other, session: session).status == .notFound)
            let cancel = #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}"#
            #expect(try await post(client, cancel, token: other, session: session).status == .notFound)
            let streamHeaders: HTTPFields = [.accept: "text/event-stream", .mcpSessionID: session, .authorization: "Bearer \(other)"]
            #expect(try await client.execute(uri: "/mcp", method: .get, headers: streamHeaders) { $0.status } == .notFound)
            let deleteHeaders: HTTPFields = [.mcpSessionID: session, .authorization: "Bearer \(other)"]
            #expect(try await client.execute(uri: "/mcp", method: .delete, headers: deleteHeaders) { $0.status } == .notFound)
            // The owner's session is untouched.
            #expect(try await post(client, ping, token: owner, session: session).status == .ok)
        }
    }
}
