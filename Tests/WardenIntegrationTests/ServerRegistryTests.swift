import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WardenContracts

#if canImport(Glibc)
    import Glibc
#endif

/// The server registry end to end: `warden server …` against the admin API of one gateway, with
/// the change applied by a second, running gateway without a restart.
@Suite(.serialized) struct ServerRegistryTests {
    static let adminToken = TestMesh.adminToken

    func warden(_ arguments: [String], url: String, token: String? = adminToken) async throws -> (status: Int32?, output: String) {
        var environment = ["WARDEN_URL": url]
        environment["WARDEN_ADMIN_TOKEN"] = token ?? ""
        let child = try ChildProcess(
            name: "warden-cli", executable: try TestEnvironment.binaries.appendingPathComponent("warden"), arguments: arguments,
            environment: environment)
        let status = await child.waitForExit(timeout: .seconds(30))
        return (status, child.output)
    }

    func tools(_ url: String) async throws -> [String] {
        var request = HTTPClientRequest(url: url + "/mcp")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "MCP-Protocol-Version", value: "2026-07-28")
        request.headers.add(name: "Mcp-Method", value: "tools/list")
        request.body = .bytes(
            ByteBuffer(
                string:
                    #"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#
            ))
        let response = try await HTTPClient.shared.execute(request.authorized(), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        let list = (object?["result"] as? [String: Any])?["tools"] as? [[String: Any]] ?? []
        return list.compactMap { $0["name"] as? String }.sorted()
    }

    @Test func serversAreManagedFromTheCLIAndRunningGatewaysFollow() async throws {
        try await withMesh { mesh in
            let secondPort = freePort()
            try mesh.start(.gateway, extra: ["WARDEN_ADMIN_TOKEN": Self.adminToken])
            try mesh.start(.gateway, name: "gateway-2", extra: ["WARDEN_ADMIN_TOKEN": Self.adminToken, "WARDEN_HTTP_PORT": "\(secondPort)"])
            let first = mesh.gatewayURL, second = "http://127.0.0.1:\(secondPort)"
            try await mesh.waitFor("the gateway") { $0.gateway.ready }
            try await mesh.withAgent {
                #expect(await eventually(timeout: .seconds(30)) { (try? await self.warden(["server", "list"], url: second))?.status == 0 })

                // Credentials are checked.
                let anonymous = try await warden(["server", "list"], url: first, token: nil)
                #expect(anonymous.status != 0 && anonymous.output.contains("WARDEN_ADMIN_TOKEN"), "\(anonymous.output)")
                let wrong = try await warden(["server", "list"], url: first, token: "not-the-token-at-all-0000000")
                #expect(wrong.status != 0 && wrong.output.contains("unauthorized"), "\(wrong.output)")
                let empty = try await warden(["server", "list"], url: first)
                #expect(empty.output.contains("no MCP servers registered"), "\(empty.output)")

                // Added on the first gateway, the server runs on the second one too.
                let bench = try TestEnvironment.binaries.appendingPathComponent("warden-bench").path
                let plaintext = try await warden(
                    ["server", "add", "bench", "--command", bench, "--arg", "mcp-server", "--env", "BENCH_SECRET=hunter2-never-shown"], url: first)
                #expect(plaintext.status != 0 && plaintext.output.contains("warden secret set servers/bench/env/BENCH_SECRET"), "\(plaintext.output)")
                let valueFile = FileManager.default.temporaryDirectory.appendingPathComponent("warden-bench-\(UUID().uuidString)")
                defer { try? FileManager.default.removeItem(at: valueFile) }
                try Data("hunter2-never-shown".utf8).write(to: valueFile)
                let stored = try await warden(["secret", "set", "--shared", "bench/secret", "--from-file", valueFile.path], url: first)
                #expect(stored.status == 0, "\(stored.output)")
                let added = try await warden(
                    ["server", "add", "bench", "--command", bench, "--arg", "mcp-server", "--env", "BENCH_SECRET=secret://bench/secret"], url: first)
                #expect(added.status == 0, "\(added.output)")
                #expect(await eventually(timeout: .seconds(20)) { (try? await self.tools(second)) == ["bench__echo", "bench__slow"] })
                let shown = try await warden(["server", "show", "bench", "--json"], url: second)
                let view = try JSONDecoder().decode(MCPServerView.self, from: Data(shown.output.utf8))
                #expect(view.envNames == ["BENCH_SECRET"] && view.state == "ready" && view.tools == 2, "\(shown.output)")
                #expect(view.secrets == ["secret://bench/secret"], "\(shown.output)")
                let table = try await warden(["server", "list"], url: second)
                #expect(table.output.contains("bench") && table.output.contains("ready"), "\(table.output)")
                let described = try await warden(["server", "show", "bench"], url: first)
                for output in [shown.output, table.output, described.output] {
                    #expect(!output.contains("hunter2"), "secret values are never shown")
                }

                // Exposure narrows what agents see, and what they can call.
                #expect(try await warden(["server", "update", "bench", "--expose-tools", "echo"], url: first).status == 0)
                #expect(await eventually(timeout: .seconds(20)) { (try? await self.tools(second)) == ["bench__echo"] })
                #expect(try await warden(["server", "update", "bench", "--expose-tools", "all"], url: second).status == 0)
                #expect(await eventually(timeout: .seconds(20)) { (try? await self.tools(first)) == ["bench__echo", "bench__slow"] })

                // Disabled: stopped everywhere; enabled: back.
                #expect(try await warden(["server", "disable", "bench"], url: first).status == 0)
                #expect(await eventually(timeout: .seconds(20)) { (try? await self.tools(second)) == [] })
                #expect(try await warden(["server", "enable", "bench"], url: first).status == 0)
                #expect(await eventually(timeout: .seconds(20)) { (try? await self.tools(second)) == ["bench__echo", "bench__slow"] })

                // Bad requests get clear errors.
                let badID = try await warden(["server", "add", "Bad_ID", "--command", "x"], url: first)
                #expect(badID.status != 0 && badID.output.contains("use 1-32 of a-z"), "\(badID.output)")
                let duplicate = try await warden(["server", "add", "bench", "--command", "x"], url: first)
                #expect(duplicate.status != 0 && duplicate.output.contains("exists"), "\(duplicate.output)")
                let missing = try await warden(["server", "remove", "nobody"], url: first)
                #expect(missing.status != 0 && missing.output.contains("no server with id"), "\(missing.output)")
                let noTarget = try await warden(["server", "add", "empty"], url: first)
                #expect(noTarget.status != 0 && noTarget.output.contains("needs a command"), "\(noTarget.output)")
                let badURL = try await warden(["server", "add", "web", "--server-url", "ftp://example.com/mcp"], url: first)
                #expect(badURL.status != 0 && badURL.output.contains("http(s) url"), "\(badURL.output)")

                // Removed: gone from both gateways, and its process is stopped.
                #expect(try await warden(["server", "remove", "bench"], url: second).status == 0)
                #expect(
                    await eventually(timeout: .seconds(20)) {
                        let onFirst = try? await self.tools(first)
                        let onSecond = try? await self.tools(second)
                        return onFirst == [] && onSecond == []
                    })
                let gateway = try #require(mesh.processes["gateway"])
                #expect(await eventually(timeout: .seconds(10)) { MCPGatewayTests().childProcesses(of: gateway.pid).isEmpty })
                #expect(mesh.processes.values.allSatisfy { !$0.output.contains("hunter2") }, "no secret in any log")
            }
        }
    }
}

/// Lazy start, idle stop and the instance cap of stdio servers, watched through the gateway's
/// child processes.
@Suite(.serialized) struct ServerPoolTests {
    @Test func lazyServersStartOnFirstUseStopWhenIdleAndStayUnderTheirCap() async throws {
        try await withMesh { mesh in
            let bench = try TestEnvironment.binaries.appendingPathComponent("warden-bench").path
            let servers = FileManager.default.temporaryDirectory.appendingPathComponent("warden-pool-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: servers) }
            try Data(
                #"{"servers": [{"id": "bench", "command": "\#(bench)", "args": ["mcp-server"], "start": "lazy", "idleTimeout": 2, "maxInstances": 2}]}"#
                    .utf8
            ).write(to: servers)
            let gateway = try mesh.start(.gateway, extra: ["WARDEN_MCP_SERVERS_FILE": servers.path])
            try await mesh.waitFor("the registry", timeout: .seconds(30)) { $0.mcpServers?.first?.state == "idle" }
            try await mesh.withAgent {
                let children = { MCPGatewayTests().childProcesses(of: gateway.pid) }
                #expect(children().isEmpty, "a lazy server does not start with the gateway")

                let url = mesh.gatewayURL + "/mcp"
                let session = try #require(try await EventStreamTests.post(url, EventStreamTests.initialize).session)
                let listed = try await EventStreamTests.post(url, #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, session: session)
                #expect(listed.body.contains("bench__echo"), "the first listing starts it: \(listed.body)")
                #expect(children().count == 1)

                // Idle: stopped, but its tools stay listed and the next call starts it again.
                #expect(await eventually(timeout: .seconds(10)) { children().isEmpty }, "stopped after its idle time")
                #expect(await mesh.status()?.mcpServers?.first?.state == "idle")
                #expect(
                    try await EventStreamTests.post(url, #"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#, session: session).body.contains(
                        "bench__echo"))
                let call = try await EventStreamTests.post(
                    url, #"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"bench__echo","arguments":{"text":"woken"}}}"#,
                    session: session
                )
                #expect(call.body.contains("woken"), "\(call.body)")

                // Busy: a second instance starts, never a third.
                var peak = 0
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for id in 10..<16 {
                        group.addTask {
                            _ = try await EventStreamTests.post(
                                url, EventStreamTests.slowCall(id: id, milliseconds: 1_500, progress: false), session: session)
                        }
                    }
                    group.addTask {}
                    for _ in 0..<40 {
                        peak = max(peak, children().count)
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    try await group.waitForAll()
                }
                #expect(peak == 2, "the cap holds: \(peak) instances at most")
            }
        }
    }
}
