import Foundation
import Testing
import WardenGateway
import WardenMCP

/// One Streamable HTTP connection against the bench server, answering in JSON or in event streams:
/// what a call relies on besides the happy path (progress on the way, the size limit, the deadline,
/// a caller that gives up, a server that goes away).
@Suite(.serialized) struct StreamableHTTPConnectionTests {
    static let initialize: JSONValue = .object([
        ("protocolVersion", "2025-06-18"), ("capabilities", .object([])), ("clientInfo", .object([("name", "test"), ("version", "1")])),
    ])

    func connect(_ url: String, maximumMessageBytes: Int = 4 << 20, callTimeout: Duration = .seconds(30)) async throws
        -> StreamableHTTPConnection
    {
        let connection = StreamableHTTPConnection(
            serverID: "bench", spec: HTTPServerSpec(url: url, maximumMessageBytes: maximumMessageBytes), callTimeout: callTimeout,
            logger: TestEnvironment.logger)
        _ = try await connection.request("initialize", params: Self.initialize, timeout: .seconds(10))
        try await connection.send(.notification(method: "notifications/initialized", params: nil))
        return connection
    }

    func call(
        _ connection: StreamableHTTPConnection, _ tool: String, _ arguments: JSONValue, meta: JSONValue? = nil, timeout: Duration = .seconds(10)
    )
        async throws -> JSONValue
    {
        var params: [(String, JSONValue)] = [("name", .string(tool)), ("arguments", arguments)]
        if let meta { params.append(("_meta", meta)) }
        return try await connection.request("tools/call", params: .object(params), timeout: timeout)
    }

    func text(_ result: JSONValue) -> String? {
        guard case .array(let content)? = result["content"] else { return nil }
        return content.first?["text"]?.stringValue
    }

    @Test(arguments: [false, true]) func aCallIsAnsweredWithinItsLimits(sseAnswers: Bool) async throws {
        let (server, url) = try await HTTPDownstreamTests.benchServer("streamable-http", sseAnswers: sseAnswers)
        defer { kill(server.pid, SIGKILL) }
        let connection = try await connect(url, maximumMessageBytes: 1_024)
        #expect(text(try await call(connection, "echo", .object([("text", "hello")]))) == "hello")

        // An answer over the limit fails its call, and only that call.
        await #expect {
            try await call(connection, "echo", .object([("text", .string(String(repeating: "x", count: 2_000)))]))
        } throws: { error in
            let error = error as? DownstreamError
            return error?.code == .protocolViolation && error?.message.contains("larger than 1024 bytes") == true
        }
        #expect(text(try await call(connection, "echo", .object([("text", "after")]))) == "after")

        // No answer by the deadline: the call fails as a timeout, soon after it.
        let started = ContinuousClock.now
        await #expect {
            try await call(connection, "slow", .object([("ms", 5_000)]), timeout: .milliseconds(300))
        } throws: { ($0 as? DownstreamError)?.code == .timeout }
        #expect(ContinuousClock.now - started < .seconds(4), "well before the server's 5 s")

        // A caller that gives up is told so at once; the connection goes on serving others.
        let given = Task { try await call(connection, "slow", .object([("ms", 5_000)])) }
        try await Task.sleep(for: .milliseconds(200))
        let cancelled = ContinuousClock.now
        given.cancel()
        await #expect(throws: CancellationError.self) { try await given.value }
        #expect(ContinuousClock.now - cancelled < .seconds(4), "well before the server's 5 s")
        #expect(text(try await call(connection, "echo", .object([("text", "still here")]))) == "still here")

        // The server goes away: calls fail as unavailable, naming the server's address but not its
        // URL's path (which can hold a credential).
        kill(server.pid, SIGKILL)
        let path = try #require(URLComponents(string: url)?.path)
        #expect(!path.isEmpty)
        await #expect {
            try await call(connection, "echo", .object([("text", "gone")]))
        } throws: { error in
            let error = error as? DownstreamError
            return error?.code == .unavailable && error?.message.hasSuffix("cannot reach \(HTTPServerSpec(url: url).origin)") == true
                && error?.message.contains(path) == false
        }
    }

    @Test(.timeLimit(.minutes(1))) func progressOnAnEventStreamArrivesBeforeTheReply() async throws {
        let (server, url) = try await HTTPDownstreamTests.benchServer("streamable-http", sseAnswers: true)
        defer { kill(server.pid, SIGKILL) }
        let connection = try await connect(url)
        let result = try await call(connection, "slow", .object([("ms", 100)]), meta: .object([("progressToken", "tok-1")]))
        #expect(text(result) == "done")
        var progress: [JSONValue] = []
        for await message in connection.incoming {
            if case .notification("notifications/progress", let params?) = message { progress.append(params) }
            if progress.count == 2 { break }
        }
        #expect(progress.map { $0["progressToken"] } == ["tok-1", "tok-1"])
        #expect(progress.map { $0["progress"] } == [1, 2])
    }

    struct NoURL: Error, CustomStringConvertible { var description: String }

    /// Starts `broken_http_server.py` and returns it with its URL.
    func brokenServer() async throws -> (ChildProcess, String) {
        let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/broken_http_server.py").path
        let server = try ChildProcess(name: "broken-http", executable: URL(fileURLWithPath: try StdioServerTests.python), arguments: [script])
        var url: String?
        _ = await eventually(timeout: .seconds(20)) {
            url = server.output.split(separator: "\n").first { $0.hasPrefix("http://") }.map(String.init)
            return url != nil
        }
        guard let url else {
            kill(server.pid, SIGKILL)
            throw NoURL(description: "the server printed no URL: \(server.output)")
        }
        return (server, url)
    }

    /// An answer that breaks off halfway (the server crashed, a proxy dropped the connection) fails
    /// its call as unavailable, saying so; the connection serves the next call.
    @Test func anAnswerThatBreaksOffFailsItsCallOnly() async throws {
        let (server, url) = try await brokenServer()
        defer { kill(server.pid, SIGKILL) }
        let connection = try await connect(url)
        for tool in ["cut_json", "cut_events"] {
            await #expect {
                try await call(connection, tool, .object([]))
            } throws: { error in
                let error = error as? DownstreamError
                return error?.code == .unavailable && error?.message == "the answer to tools/call broke off"
            }
            #expect(text(try await call(connection, "echo", .object([("text", .string("after \(tool)"))]))) == "after \(tool)")
        }
    }

    /// A JSON body that stalls after its head fails the call once the server's call timeout passes
    /// without a byte (not at a fixed 30 s, which would also cut short a tool that works longer
    /// before it answers); a caller that gives up meanwhile is told so at once.
    @Test func aStalledAnswerTimesOutAtTheCallTimeout() async throws {
        let (server, url) = try await brokenServer()
        defer { kill(server.pid, SIGKILL) }
        let connection = try await connect(url, callTimeout: .seconds(3))
        let started = ContinuousClock.now
        await #expect {
            try await call(connection, "stall_json", .object([]), timeout: .seconds(3))
        } throws: { error in
            let error = error as? DownstreamError
            return error?.code == .timeout && error?.message == "no answer to tools/call in time"
        }
        #expect(ContinuousClock.now - started < .seconds(10), "within the call timeout's 3 s, not the server's minute")
        #expect(text(try await call(connection, "echo", .object([("text", "after")]))) == "after")

        let long = try await connect(url)
        let given = Task { try await call(long, "stall_json", .object([])) }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = ContinuousClock.now
        given.cancel()
        await #expect(throws: CancellationError.self) { try await given.value }
        #expect(ContinuousClock.now - cancelled < .seconds(10), "well before the server's minute")

        // A configured server's call timeout is the one its connection keeps to.
        let supervisor = DownstreamSupervisor(
            serverID: "broken", http: HTTPServerSpec(url: url), callTimeout: .seconds(3), logger: TestEnvironment.logger)
        let running = Task { try await supervisor.run() }
        defer { running.cancel() }
        #expect(await eventually(timeout: .seconds(20)) { supervisor.status.state == .ready })
        let viaSupervisor = ContinuousClock.now
        await #expect {
            try await supervisor.call("tools/call", params: .object([("name", "stall_json"), ("arguments", .object([]))]))
        } throws: { ($0 as? DownstreamError)?.code == .timeout }
        #expect(ContinuousClock.now - viaSupervisor < .seconds(10), "within the server's call timeout")
    }
}
