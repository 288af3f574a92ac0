import Foundation
import Logging
import Testing
import WardenGateway
import WardenMCP
import WardenServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// The gateway's stdio transport against a real MCP server from PyPI (`mcp-server-time`).
@Suite struct StdioServerTests {
    /// As every service does: a server that exits mid-write fails the write instead of killing the process.
    init() { WardenServiceMain.ignoreBrokenPipes() }

    static var python: String { get throws { try TestEnvironment.value("WARDEN_TEST_PYTHON") } }

    let initialize: JSONValue = .object([
        ("protocolVersion", "2025-06-18"),
        ("capabilities", .object([])),
        ("clientInfo", .object([("name", "warden-test"), ("version", "0")])),
    ])

    /// Runs a connection for the duration of `body`, then stops it and checks the process is gone.
    func withServer(_ spec: StdioLaunchSpec, _ body: (StdioServerConnection) async throws -> Void) async throws {
        let connection = StdioServerConnection(serverID: "time", spec: spec, logger: TestEnvironment.logger)
        let running = Task { try await connection.run() }
        do {
            try await body(connection)
        } catch {
            await connection.stop(grace: .milliseconds(500))
            _ = try? await running.value
            throw error
        }
        await connection.stop()
        _ = try? await running.value
    }

    @Test func initializeListAndCallAToolOnARealServer() async throws {
        let spec = StdioLaunchSpec(command: try Self.python, arguments: ["-m", "mcp_server_time", "--local-timezone", "UTC"])
        var group: pid_t?
        try await withServer(spec) { server in
            // The first start of a Python server in a fresh virtualenv, while the other suites start
            // their processes on the same two cores, took over 20 s once in CI: give it a minute.
            let result = try await server.request("initialize", params: initialize, timeout: .seconds(60))
            #expect(result["serverInfo"]?["name"] != nil)
            try await server.notify("notifications/initialized", params: nil)
            let tools = try await server.request("tools/list", timeout: .seconds(10))
            guard case .array(let list) = tools["tools"] ?? .null else { Issue.record("no tools in \(tools.jsonText)"); return }
            #expect(list.contains { $0["name"] == .string("get_current_time") })
            let call = try await server.request(
                "tools/call",
                params: .object([("name", "get_current_time"), ("arguments", .object([("timezone", "UTC")]))]),
                timeout: .seconds(10)
            )
            #expect(call.jsonText.contains("UTC"))
            // A JSON-RPC error from the server names the server.
            await #expect {
                try await server.request("no/such/method", timeout: .seconds(10))
            } throws: { error in
                guard let error = error as? DownstreamError else { return false }
                return error.code == .serverError && error.server == "time" && error.serverError?.code == -32601
            }
            group = server.processGroup
            #expect(group != nil)
        }
        // Stopped: the whole process group is gone.
        let gone = await eventually(timeout: .seconds(5)) { kill(-(group ?? 0), 0) != 0 }
        #expect(gone)
    }

    @Test func aKilledServerFailsPendingAndLaterCallsClearly() async throws {
        // A "server" that reads requests and never answers, so that a call is pending when it dies.
        let spec = StdioLaunchSpec(command: try Self.python, arguments: ["-c", "import sys\nfor line in sys.stdin: pass"])
        try await withServer(spec) { server in
            #expect(await eventually(timeout: .seconds(10)) { server.processGroup != nil }, "the server started")
            let pending = Task { try await server.request("tools/list", timeout: .seconds(30)) }
            #expect(await eventually(timeout: .seconds(5)) { server.waitingCalls == 1 }, "the call is pending")
            let group = try #require(server.processGroup)
            kill(-group, SIGKILL)
            await #expect { try await pending.value } throws: { ($0 as? DownstreamError)?.code == .unavailable }
            await #expect { try await server.request("tools/list", timeout: .seconds(5)) } throws: {
                ($0 as? DownstreamError)?.code == .unavailable
            }
        }
    }

    @Test func slowServersTimeOut() async throws {
        let spec = StdioLaunchSpec(command: try Self.python, arguments: ["-c", "import sys\nfor line in sys.stdin: pass"])
        try await withServer(spec) { server in
            let start = ContinuousClock.now
            await #expect { try await server.request("tools/list", timeout: .milliseconds(300)) } throws: {
                ($0 as? DownstreamError)?.code == .timeout
            }
            #expect(ContinuousClock.now - start < .seconds(3))
        }
    }

    @Test func anOversizedMessageStopsTheServer() async throws {
        let script = "import sys\nsys.stdout.write('x' * 5000 + '\\n'); sys.stdout.flush()\nfor line in sys.stdin: pass"
        let spec = StdioLaunchSpec(command: try Self.python, arguments: ["-c", script], maximumMessageBytes: 1024)
        try await withServer(spec) { server in
            let stopped = await eventually(timeout: .seconds(5)) { server.processGroup == nil }
            #expect(stopped)
            await #expect { try await server.request("tools/list", timeout: .seconds(2)) } throws: {
                [.protocolViolation, .unavailable].contains(($0 as? DownstreamError)?.code)
            }
        }
    }

    @Test func theEnvironmentIsMinimal() async throws {
        setenv("WARDEN_TEST_SECRET_CANARY", "must-not-leak", 1)
        let script =
            "import os, json, sys\nprint(json.dumps({'jsonrpc': '2.0', 'method': 'env', 'params': dict(os.environ)}), flush=True)\nfor line in sys.stdin: pass"
        let spec = StdioLaunchSpec(command: try Self.python, arguments: ["-c", script], environment: ["SERVER_TOKEN": "given"])
        try await withServer(spec) { server in
            var iterator = server.incoming.makeAsyncIterator()
            let message = await iterator.next()
            guard case .notification("env", let params?)? = message else { Issue.record("no env message: \(String(describing: message))"); return }
            #expect(params["SERVER_TOKEN"] == .string("given"))
            #expect(params["WARDEN_TEST_SECRET_CANARY"] == nil)
            #expect(params["WARDEN_TEST_PG_ADMIN_PASSWORD"] == nil)
        }
    }

    @Test func aMissingCommandIsReported() async throws {
        let connection = StdioServerConnection(
            serverID: "ghost", spec: StdioLaunchSpec(command: "/nonexistent/mcp-server"), logger: TestEnvironment.logger)
        await #expect { try await connection.run() } throws: {
            ($0 as? DownstreamError) == DownstreamError(.unavailable, server: "ghost", "could not start '/nonexistent/mcp-server'")
        }
        await #expect { try await connection.request("x", timeout: .seconds(1)) } throws: { ($0 as? DownstreamError)?.code == .unavailable }
    }
}

/// Supervision: handshake and catalogue, restart after a crash, no process left after stop.
@Suite struct DownstreamSupervisorTests {
    init() { WardenServiceMain.ignoreBrokenPipes() }

    @Test func keepsARealServerRunningAndRestartsItAfterACrash() async throws {
        let spec = StdioLaunchSpec(command: try StdioServerTests.python, arguments: ["-m", "mcp_server_time", "--local-timezone", "UTC"])
        var policy = RestartPolicy()
        policy.initialDelay = .milliseconds(100)
        let supervisor = DownstreamSupervisor(
            serverID: "time", spec: spec, callTimeout: .seconds(20), restartPolicy: policy, logger: TestEnvironment.logger)
        let running = Task { try await supervisor.run() }
        defer { running.cancel() }

        #expect(await eventually(timeout: .seconds(30)) { supervisor.status.state == .ready })
        let catalogue = try #require(supervisor.status.catalogue)
        #expect(catalogue.tools.contains { $0["name"] == .string("convert_time") })
        #expect(catalogue.serverInfo["name"] != nil)
        let result = try await supervisor.call(
            "tools/call",
            params: .object([("name", "get_current_time"), ("arguments", .object([("timezone", "UTC")]))])
        )
        #expect(result["content"] != nil)

        let firstGroup = try #require(supervisor.status.state == .ready ? currentGroup(supervisor) : nil)
        kill(-firstGroup, SIGKILL)
        #expect(await eventually(timeout: .seconds(5)) { supervisor.status.restarts == 1 })
        #expect(await eventually(timeout: .seconds(30)) { supervisor.status.state == .ready })
        let secondGroup = try #require(currentGroup(supervisor))
        #expect(secondGroup != firstGroup)

        running.cancel()
        _ = try? await running.value
        #expect(supervisor.status.state == .stopped)
        #expect(await eventually(timeout: .seconds(5)) { kill(-secondGroup, 0) != 0 }, "no process of the server is left")
        await #expect { try await supervisor.call("tools/list", params: nil) } throws: { ($0 as? DownstreamError)?.code == .unavailable }
    }

    @Test func aServerThatCannotStartIsReportedAndRetried() async throws {
        var policy = RestartPolicy()
        policy.initialDelay = .milliseconds(50)
        let supervisor = DownstreamSupervisor(
            serverID: "ghost",
            spec: StdioLaunchSpec(command: "/nonexistent/server"),
            restartPolicy: policy,
            logger: TestEnvironment.logger
        )
        let running = Task { try await supervisor.run() }
        #expect(await eventually(timeout: .seconds(5)) { supervisor.status.restarts >= 2 })
        #expect(supervisor.status.detail?.contains("could not start") == true)
        await #expect { try await supervisor.call("tools/list", params: nil) } throws: {
            ($0 as? DownstreamError)?.message.contains("could not start") == true
        }
        running.cancel()
        _ = try? await running.value
    }

    func currentGroup(_ supervisor: DownstreamSupervisor) -> pid_t? {
        supervisor.processGroup
    }
}
