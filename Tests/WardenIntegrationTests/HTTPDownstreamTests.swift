import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WardenContracts

#if canImport(Glibc)
    import Glibc
#endif

/// Remote MCP servers behind the gateway: Streamable HTTP answering with JSON, Streamable HTTP
/// answering with SSE, and the legacy HTTP+SSE transport, all `warden-bench mcp-server` processes,
/// next to a stdio server from PyPI, driven by the official Python SDK in both connect modes.
@Suite(.serialized) struct HTTPDownstreamTests {
    /// Starts a bench MCP server and returns it with the URL it printed.
    static func benchServer(_ transport: String, sseAnswers: Bool = false) async throws -> (ChildProcess, String) {
        let bench = try TestEnvironment.binaries.appendingPathComponent("warden-bench")
        let child = try ChildProcess(
            name: "bench-\(transport)", executable: bench,
            arguments: ["mcp-server", "--transport", transport] + (sseAnswers ? ["--sse-answers"] : []))
        var url: String?
        _ = await eventually(timeout: .seconds(20)) {
            url = child.output.split(separator: "\n").first { $0.hasPrefix("http://") }.map(String.init)
            return url != nil
        }
        return (child, try #require(url, "the bench server printed no URL: \(child.output)"))
    }

    func runCatalogueCheck(_ url: String, _ mode: String, _ servers: [String]) async throws -> (status: Int32?, output: String) {
        try await runPythonCheck("mcp_catalogue_check.py", [url, mode] + servers)
    }

    @Test func everyTransportIsMergedAndServedInBothEras() async throws {
        let (json, jsonURL) = try await Self.benchServer("streamable-http")
        let (sse, sseURL) = try await Self.benchServer("streamable-http", sseAnswers: true)
        let (legacy, legacyURL) = try await Self.benchServer("sse")
        defer { for child in [json, sse, legacy] { kill(child.pid, SIGKILL) } }
        try await withMesh { mesh in
            let python = try StdioServerTests.python
            let servers = FileManager.default.temporaryDirectory.appendingPathComponent("warden-http-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: servers) }
            try Data(
                """
                {"servers": [
                  {"id": "time", "command": "\(python)", "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]},
                  {"id": "json", "url": "\(jsonURL)", "headers": {"Authorization": "Bearer downstream-secret-7f3a"}},
                  {"id": "sse", "url": "\(sseURL)", "transport": "streamable-http"},
                  {"id": "legacy", "url": "\(legacyURL)", "transport": "sse"}
                ]}
                """.utf8
            ).write(to: servers)
            try mesh.start(.gateway, extra: ["WARDEN_MCP_SERVERS_FILE": servers.path])
            try await mesh.waitFor("every MCP server", timeout: .seconds(30)) { status in
                status.gateway.ready && (status.mcpServers ?? []).filter { $0.state == "ready" }.count == 4
            }
            try await mesh.withAgent {
                let url = mesh.gatewayURL + "/mcp"
                for mode in ["auto", "legacy"] {
                    let run = try await runCatalogueCheck(url, mode, ["json", "sse", "legacy"])
                    #expect(run.status == 0, "\(mode): \(run.output)")
                    let result = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any] ?? [:]
                    #expect((result["protocol"] as? String == "2026-07-28") == (mode == "auto"))
                    let tools = Set(result["tools"] as? [String] ?? [])
                    #expect(tools.isSuperset(of: ["time__convert_time", "json__echo", "sse__echo", "legacy__echo", "sse__slow"]), "\(tools)")
                    #expect(result["resources"] as? [String] == ["json+bench://readme", "legacy+bench://readme", "sse+bench://readme"])
                    #expect(result["templates"] as? [String] == ["json+bench://items/{id}", "legacy+bench://items/{id}", "sse+bench://items/{id}"])
                    let each = result["servers"] as? [String: [String: Any]] ?? [:]
                    for server in ["json", "sse", "legacy"] {
                        #expect(each[server]?["echo"] as? String == "hello \(server)")
                        #expect(each[server]?["read"] as? String == "contents of bench://items/42")
                        #expect(each[server]?["prompt"] as? String == "Hello, Ada!")
                        #expect(each[server]?["complete"] as? [String] == ["Ada", "Alan"])
                    }
                }
                // Per-server headers are credentials: they reach the server, never the gateway's log.
                #expect(mesh.processes["gateway"]?.output.contains("downstream-secret-7f3a") == false)

                // A remote server that dies: its calls fail quickly with its name; the others keep working.
                kill(sse.pid, SIGKILL)
                let started = ContinuousClock.now
                let after = try await runCatalogueCheck(url, "legacy", ["sse"])
                #expect(after.status != 0 && after.output.contains("MCP server 'sse'"), "\(after.output)")
                #expect(ContinuousClock.now - started < .seconds(20))
                let others = try await runCatalogueCheck(url, "legacy", ["json", "legacy"])
                #expect(others.status == 0, "\(others.output)")
                #expect(
                    await eventually(timeout: .seconds(10)) {
                        guard let status = await mesh.status() else { return false }
                        return status.mcpServers?.first { $0.id == "sse" }?.state != "ready"
                    })
            }
        }
    }

    /// Starts the official SDK's Streamable HTTP server on `port` and waits until it answers.
    static func sdkServer(port: Int) async throws -> ChildProcess {
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/http_echo_server.py").path
        let child = try ChildProcess(
            name: "http-echo", executable: URL(fileURLWithPath: try StdioServerTests.python), arguments: [script, "\(port)"])
        let answering = await eventually(timeout: .seconds(60)) {
            (try? await EventStreamTests.post("http://127.0.0.1:\(port)/mcp", MCPGatewayTests.initialize).status) == 200
        }
        #expect(answering, "the SDK server did not answer: \(child.output)")
        return child
    }

    @Test func aRestartedServerForgetsTheSessionAndTheClientLosesNoCall() async throws {
        let port = freePort()
        var server = try await Self.sdkServer(port: port)
        defer { kill(server.pid, SIGKILL) }
        try await MCPGatewayTests().withGateway(httpServer: "http://127.0.0.1:\(port)/mcp") { mesh, _ in
            let url = mesh.gatewayURL + "/mcp"
            let gateway = MCPGatewayTests()
            let session = try #require(try await gateway.post(url, MCPGatewayTests.initialize).session)
            #expect(try await gateway.waitForTools(url, session: session, ["web__echo"]))
            func echo(_ text: String) async throws -> (status: Int, body: String) {
                let answer = try await gateway.post(
                    url, #"{"jsonrpc":"2.0","id":"\#(text)","method":"tools/call","params":{"name":"web__echo","arguments":{"text":"\#(text)"}}}"#,
                    session: session)
                return (answer.status, answer.body)
            }
            let first = try await echo("one")
            #expect(first.status == 200 && first.body.contains("echo: one"), "\(first)")

            // The server restarts between two calls: it no longer knows the gateway's session.
            await server.stop()
            server = try await Self.sdkServer(port: port)
            // Three calls at once all meet the forgotten session: one renews it, the others wait for it.
            async let second = echo("two")
            async let third = echo("three")
            async let fourth = echo("four")
            for (text, answer) in [("two", try await second), ("three", try await third), ("four", try await fourth)] {
                #expect(answer.status == 200 && answer.body.contains("echo: \(text)") && !answer.body.contains("\"error\""), "\(answer)")
            }
            #expect(mesh.processes["gateway"]?.output.contains("forgot the gateway's session") == true)
        }
    }

    @Test func aServersRedirectIsNeverFollowed() async throws {
        let port = freePort()
        let target = try await Self.sdkServer(port: port)
        defer { kill(target.pid, SIGKILL) }
        let redirectPort = freePort()
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/redirecting_server.py").path
        let redirector = try ChildProcess(
            name: "redirector", executable: URL(fileURLWithPath: try StdioServerTests.python),
            arguments: [script, "\(redirectPort)", "http://127.0.0.1:\(port)/mcp"])
        defer { kill(redirector.pid, SIGKILL) }
        // Checked with a client that does not follow redirects either (the shared one does).
        let client = HTTPClient(configuration: .init(redirectConfiguration: .disallow))
        let redirecting = await eventually(timeout: .seconds(20)) {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(redirectPort)/mcp")
            request.method = .POST
            return (try? await client.execute(request, timeout: .seconds(5)).status) == .temporaryRedirect
        }
        try await client.shutdown()
        #expect(redirecting, "\(redirector.output)")
        // `web` redirects to a working MCP server; the gateway does not go there.
        try await MCPGatewayTests().withGateway(httpServer: "http://127.0.0.1:\(redirectPort)/mcp") { mesh, _ in
            let refused = await eventually(timeout: .seconds(30)) {
                guard let web = await mesh.status()?.mcpServers?.first(where: { $0.id == "web" }) else { return false }
                return web.state != "ready" && web.detail?.contains("HTTP 307") == true
            }
            let servers = await mesh.status()?.mcpServers
            #expect(refused, "\(String(describing: servers))")
            let url = mesh.gatewayURL + "/mcp"
            let session = try #require(try await MCPGatewayTests().post(url, MCPGatewayTests.initialize).session)
            let call = try await MCPGatewayTests().post(
                url, #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"web__echo","arguments":{"text":"x"}}}"#, session: session)
            #expect(!call.body.contains("echo: x") && call.body.contains("\"error\""), "\(call.body)")
        }
    }
}
