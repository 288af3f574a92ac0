import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import WardenMCP
import WardenServiceKit

@testable import WardenGateway

/// The MCP endpoint and its pipeline without processes: in-memory sessions and event log, a
/// registry whose only servers never start.
@Suite struct MCPEndpointTests {
    static let publicURL = "https://warden.example:8443"

    func withEndpoint(auditor: CallAuditor? = nil, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        WardenServiceMain.ignoreBrokenPipes()  // as every service does: the stdio server below exits at once
        let logger = Logger(label: "test")
        let registry = DownstreamRegistry(supervisors: [
            DownstreamSupervisor(serverID: "time", spec: StdioLaunchSpec(command: "/bin/false"), logger: logger)
        ])
        let endpoint = MCPEndpoint(
            registry: registry, sessions: InMemorySessionStore(), events: InMemorySessionEventLog(),
            auditor: auditor, allowedOrigins: ["https://console.example"], publicURL: Self.publicURL, maximumBodyBytes: 1_024, logger: logger
        )
        let router = Router(context: WardenRequestContext.self)
        endpoint.addRoutes(to: router)
        // The registry runs the servers' pools while the test runs, and stops them after.
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await registry.run() }
            try await Application(router: router).test(.router, body)
            group.cancelAll()
        }
    }

    static let json: HTTPFields = [.contentType: "application/json"]
    static let initialize =
        #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#

    /// POSTs `body`; returns the status, the body and the session header.
    func post(_ client: any TestClientProtocol, _ body: String, headers: HTTPFields = json) async throws -> (
        status: HTTPResponse.Status, body: String, session: String?
    ) {
        try await client.execute(uri: "/mcp", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            (response.status, String(buffer: response.body), response.headers[.mcpSessionID])
        }
    }

    func session(_ client: any TestClientProtocol) async throws -> String {
        try #require(try await post(client, Self.initialize).session)
    }

    @Test func theStagesRunInThisOrder() {
        #expect(
            MCPRequestPipeline.stages == [
                "authenticate", "decode", "session", "catalogue", "policy", "route", "credentials", "exposure", "pins", "approval", "limits",
                "forward",
                "result size",
                "reply",
            ])
    }

    @Test func theGatewaysOwnOriginIsAllowedAndForeignOnesAreRefused() async throws {
        try await withEndpoint { client in
            var headers = Self.json
            headers[.origin] = "https://warden.example:8443"
            #expect(try await post(client, Self.initialize, headers: headers).status == .ok)
            headers[.origin] = "https://console.example"
            #expect(try await post(client, Self.initialize, headers: headers).status == .ok)
            headers[.origin] = "https://evil.example"
            let refused = try await post(client, Self.initialize, headers: headers)
            #expect(refused.status == .forbidden && refused.body.contains("Origin https://evil.example is not allowed"), "\(refused)")
            headers[.origin] = "http://warden.example:8443"
            #expect(try await post(client, Self.initialize, headers: headers).status == .forbidden, "another scheme is another origin")
        }
    }

    @Test func malformedRequestsGetAClearError() async throws {
        try await withEndpoint { client in
            let cases: [(body: String, headers: HTTPFields, status: HTTPResponse.Status, code: Int?)] = [
                (Self.initialize, [.contentType: "text/plain"], .unsupportedMediaType, JSONRPCError.Code.invalidRequest),
                ("{not json", Self.json, .badRequest, JSONRPCError.Code.parseError),
                ("[\(Self.initialize)]", Self.json, .badRequest, JSONRPCError.Code.invalidRequest),
                (#"{"jsonrpc":"2.0","id":1}"#, Self.json, .badRequest, JSONRPCError.Code.invalidRequest),
                (String(repeating: " ", count: 2_000) + Self.initialize, Self.json, .contentTooLarge, JSONRPCError.Code.invalidRequest),
                (
                    Self.initialize, [.contentType: "application/json", .mcpProtocolVersion: "1999-01-01"], .badRequest,
                    JSONRPCError.Code.unsupportedProtocolVersion
                ),
                (#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, Self.json, .badRequest, JSONRPCError.Code.invalidRequest),
                (
                    #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
                    [.contentType: "application/json", .mcpSessionID: "0123456789abcdef0123456789abcdef"], .notFound,
                    JSONRPCError.Code.sessionNotFound
                ),
            ]
            for test in cases {
                let answer = try await post(client, test.body, headers: test.headers)
                #expect(answer.status == test.status, "\(test.body.prefix(60)): \(answer)")
                let error = try JSONParser().parse(Array(answer.body.utf8))["error"]
                #expect(error?["code"] == .number(String(test.code ?? 0)), "\(test.body.prefix(60)): \(answer.body)")
            }
        }
    }

    @Test func withTheAuditSpoolFullNothingRunsAndTheErrorSaysWhy() async throws {
        // No NATS here: nothing publishes the spool, so three requests fill it.
        let auditor = CallAuditor(bus: nil, capacity: 3, logger: Logger(label: "test"))
        try await withEndpoint(auditor: auditor) { client in
            let id = try await session(client)
            var headers = Self.json
            headers[.mcpSessionID] = id
            let call = #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"nobody__now"}}"#
            for _ in 0..<3 {
                let recorded = try await post(client, call, headers: headers)
                #expect(recorded.body.contains("unknown tool: nobody__now"), "\(recorded)")
            }
            #expect(!auditor.isAccepting)
            let refused = try await post(client, call, headers: headers)
            #expect(refused.body.contains(#""code":-32045"#) && refused.body.contains("Audit is unavailable"), "\(refused)")
            #expect(!refused.body.contains("unknown tool"), "nothing ran: not even the route")
        }
    }

    @Test func aSessionServesTheGatewaysOwnAnswersAndEndsWithDelete() async throws {
        try await withEndpoint { client in
            let id = try await session(client)
            var headers = Self.json
            headers[.mcpSessionID] = id
            let ping = try await post(client, #"{"jsonrpc":"2.0","id":"p","method":"ping"}"#, headers: headers)
            #expect(ping.status == .ok && ping.body == #"{"jsonrpc":"2.0","id":"p","result":{}}"#, "\(ping)")
            // A server that does not exist: unknown, like a tool nobody has.
            let unknown = try await post(client, #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"nobody__now"}}"#, headers: headers)
            #expect(
                unknown.status == .ok && unknown.body.contains(#""code":-32602"#) && unknown.body.contains("unknown tool: nobody__now"), "\(unknown)")
            // A server that cannot start: the call fails with an error that names it.
            let broken = try await post(client, #"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"time__now"}}"#, headers: headers)
            #expect(broken.status == .ok && broken.body.contains(#""code":-32603"#) && broken.body.contains("MCP server 'time'"), "\(broken)")
            let notification = try await post(client, #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, headers: headers)
            #expect(notification.status == .accepted)
            let deleted = try await client.execute(uri: "/mcp", method: .delete, headers: [.mcpSessionID: id]) { $0.status }
            #expect(deleted == .noContent)
            #expect(try await post(client, #"{"jsonrpc":"2.0","id":4,"method":"ping"}"#, headers: headers).status == .notFound)
        }
    }

    @Test func theStatelessEraIsValidatedAndAnsweredWithoutASession() async throws {
        try await withEndpoint { client in
            let meta = #""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#
            var headers = Self.json
            headers[.mcpProtocolVersion] = "2026-07-28"
            headers[.mcpMethod] = "server/discover"
            let discover = try await post(client, #"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{\#(meta)}}"#, headers: headers)
            #expect(
                discover.status == .ok && discover.body.contains("supportedVersions") && discover.body.contains("\"resultType\":\"complete\""),
                "\(discover)")
            // The Mcp-Method header must match the body.
            let mismatch = try await post(client, #"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{\#(meta)}}"#, headers: headers)
            #expect(mismatch.status == .badRequest && mismatch.body.contains("\(JSONRPCError.Code.headerMismatch)"), "\(mismatch)")
            headers[.mcpMethod] = "tools/list"
            let tools = try await post(client, #"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{\#(meta)}}"#, headers: headers)
            #expect(tools.status == .ok && tools.body.contains("\"tools\":[]") && tools.body.contains("ttlMs"), "\(tools)")
            // No GET stream in this era.
            let get = try await client.execute(uri: "/mcp", method: .get, headers: [.accept: "text/event-stream", .mcpProtocolVersion: "2026-07-28"])
            { $0 }
            #expect(get.status == .methodNotAllowed && get.headers[.allow] == "POST")
        }
    }
}
