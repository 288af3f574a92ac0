import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WardenContracts
import WardenGateway
import WardenMCP

#if canImport(Glibc)
    import Glibc
#endif

/// Answers that stream: progress on an SSE answer, a stream interrupted on one gateway and resumed
/// (`Last-Event-ID`) on another or after a restart, and cancellation reaching the replica that
/// runs the call. Two gateway processes, no balancer, `warden-bench mcp-server` over stdio.
@Suite(.serialized) struct EventStreamTests {
    func withTwoGateways(_ body: (TestMesh, _ first: String, _ second: String, _ start: @escaping () throws -> ChildProcess) async throws -> Void)
        async throws
    {
        try await withMesh { mesh in
            let bench = try TestEnvironment.binaries.appendingPathComponent("warden-bench").path
            let servers = FileManager.default.temporaryDirectory.appendingPathComponent("warden-events-\(UUID().uuidString).json")
            defer { try? FileManager.default.removeItem(at: servers) }
            let python = try StdioServerTests.python
            let asking = try TestEnvironment.repository.appendingPathComponent("Tests/Python/elicitation_server.py").path
            try Data(
                #"{"servers": [{"id": "bench", "command": "\#(bench)", "args": ["mcp-server"]}, {"id": "ask", "command": "\#(python)", "args": ["\#(asking)"]}]}"#
                    .utf8
            ).write(to: servers)
            let secondPort = freePort()
            try mesh.start(.gateway, extra: ["WARDEN_MCP_SERVERS_FILE": servers.path])
            try mesh.start(.gateway, name: "gateway-2", extra: ["WARDEN_MCP_SERVERS_FILE": servers.path, "WARDEN_HTTP_PORT": "\(secondPort)"])
            let second = "http://127.0.0.1:\(secondPort)/mcp"
            try await mesh.waitFor("the first gateway's servers", timeout: .seconds(30)) { status in
                status.mcpServers?.count == 2 && status.mcpServers?.allSatisfy { $0.state == "ready" } == true
            }
            try await mesh.withAgent {
                #expect(await eventually(timeout: .seconds(30)) { (try? await Self.post(second, Self.initialize))?.status == 200 })
                try await body(mesh, mesh.gatewayURL + "/mcp", second) {
                    try mesh.start(.gateway, extra: ["WARDEN_MCP_SERVERS_FILE": servers.path])
                }
            }
        }
    }

    static let initialize =
        #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#

    static func request(_ url: String, _ body: String, session: String? = nil, headers: [(String, String)] = []) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        if let session {
            request.headers.add(name: "Mcp-Session-Id", value: session)
            request.headers.add(name: "MCP-Protocol-Version", value: "2025-06-18")
        }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        return request.authorized()
    }

    static func post(_ url: String, _ body: String, session: String? = nil) async throws -> (
        status: Int, body: String, session: String?, contentType: String?
    ) {
        let response = try await HTTPClient.shared.execute(request(url, body, session: session), timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 4 << 20))
        return (Int(response.status.code), text, response.headers.first(name: "Mcp-Session-Id"), response.headers.first(name: "Content-Type"))
    }

    /// Reads SSE events from a response until `count` have arrived (then drops the connection) or the stream ends.
    static func events(_ request: HTTPClientRequest, upTo count: Int = .max) async throws -> [ServerSentEvent] {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        for try await chunk in response.body {
            events += try parser.feed(chunk.readableBytesView)
            if events.count >= count { break }
        }
        return Array(events.prefix(count))
    }

    /// Every event of a streamed answer; `whenStarted` runs once the first has arrived (the call
    /// runs), while the rest are still to come.
    static func events(_ request: HTTPClientRequest, whenStarted: () async throws -> Void) async throws -> [ServerSentEvent] {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        #expect(response.headers.first(name: "Content-Type") == "text/event-stream")
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        var started = false
        for try await chunk in response.body {
            events += try parser.feed(chunk.readableBytesView)
            if !started && !events.isEmpty {
                started = true
                try await whenStarted()
            }
        }
        return events
    }

    /// A stream's response once its head has arrived (the gateway has opened the stream).
    static func open(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        #expect(response.status == .ok && response.headers.first(name: "Content-Type") == "text/event-stream")
        return response
    }

    /// The events an open stream sends within `limit` (a stream that stays open and silent gives none).
    static func events(of response: HTTPClientResponse, within limit: Duration) async throws -> [ServerSentEvent] {
        let collected = Collected()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var parser = ServerSentEventParser()
                for try await chunk in response.body { collected.append(try parser.feed(chunk.readableBytesView)) }
            }
            group.addTask { try await Task.sleep(for: limit) }
            defer { group.cancelAll() }
            try await group.next()
        }
        return collected.events
    }

    /// The events a stream sends within `limit` of its head.
    static func events(_ request: HTTPClientRequest, within limit: Duration) async throws -> [ServerSentEvent] {
        try await events(of: HTTPClient.shared.execute(request, timeout: .seconds(30)), within: limit)
    }

    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [ServerSentEvent] = []
        func append(_ more: [ServerSentEvent]) { lock.withLock { stored += more } }
        var events: [ServerSentEvent] { lock.withLock { stored } }
    }

    static func resume(_ url: String, session: String, after id: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "text/event-stream")
        request.headers.add(name: "Mcp-Session-Id", value: session)
        request.headers.add(name: "MCP-Protocol-Version", value: "2025-06-18")
        request.headers.add(name: "Last-Event-ID", value: id)
        return request.authorized()
    }

    static func slowCall(id: Int, milliseconds: Int, progress: Bool = true) -> String {
        let meta = progress ? #","_meta":{"progressToken":"tok-\#(id)"}"# : ""
        return #"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"bench__slow","arguments":{"ms":\#(milliseconds)}\#(meta)}}"#
    }

    @Test func progressTurnsTheAnswerIntoAStreamAndPlainCallsStayJSON() async throws {
        try await withTwoGateways { _, first, _, _ in
            let session = try #require(try await Self.post(first, Self.initialize).session)
            let plain = try await Self.post(
                first, #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"bench__echo","arguments":{"text":"hi"}}}"#, session: session)
            #expect(plain.contentType == "application/json" && plain.body.contains("\"hi\""))
            let streamed = try await Self.events(Self.request(first, Self.slowCall(id: 3, milliseconds: 200), session: session))
            #expect(streamed.count == 3, "\(streamed)")
            #expect(
                streamed.first?.data
                    == #"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok-3","progress":1,"total":2}}"#)
            #expect(streamed.last?.data.contains(#""id":3,"result""#) == true)
            #expect(streamed.allSatisfy { $0.id.flatMap { MCPEventID($0) } != nil }, "every event of a session stream can be resumed from")
            // The official SDK sees the progress in both eras.
            let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/mcp_progress_check.py").path
            for mode in ["auto", "legacy"] {
                let child = try ChildProcess(
                    name: "python-progress", executable: URL(fileURLWithPath: try StdioServerTests.python),
                    arguments: [script, first, mode, "bench"],
                    environment: TestMesh.clientEnvironment)
                #expect(await child.waitForExit(timeout: .seconds(60)) == 0, "\(child.output)")
                #expect(child.output.contains(#""text": "done", "progress": [[1.0, 2.0], [2.0, 2.0]]"#), "\(mode): \(child.output)")
            }
        }
    }

    @Test func anInterruptedStreamResumesOnAnotherReplicaAndAfterARestart() async throws {
        try await withTwoGateways { mesh, first, second, startFirst in
            let session = try #require(try await Self.post(first, Self.initialize).session)
            // The client loses the stream after the first event; it resumes on the other gateway.
            let head = try await Self.events(Self.request(first, Self.slowCall(id: 4, milliseconds: 1_500), session: session), upTo: 1)
            let lastSeen = try #require(head.first?.id)
            let rest = try await Self.events(Self.resume(second, session: session, after: lastSeen))
            #expect(rest.count == 2, "\(rest)")
            #expect(rest.first?.data.contains(#""progress":2"#) == true)
            #expect(rest.last?.data.contains(#""id":4,"result":{"content":[{"type":"text","text":"done"}]"#) == true, "\(rest)")

            // The stream's gateway is restarted after the call ended; the missed events are still there.
            let head2 = try await Self.events(Self.request(first, Self.slowCall(id: 5, milliseconds: 400), session: session), upTo: 1)
            let lastSeen2 = try #require(head2.first?.id)
            // Followed to its end on the other replica: the call is over before its gateway restarts.
            let ended = try await Self.events(Self.resume(second, session: session, after: lastSeen2))
            #expect(ended.last?.data.contains(#""id":5,"result""#) == true, "\(ended)")
            let old = try #require(mesh.processes["gateway"])
            #expect(await old.stop(signal: SIGTERM, timeout: .seconds(15)) == 0)
            _ = try startFirst()
            #expect(
                await eventually(timeout: .seconds(30)) {
                    (try? await Self.post(first, #"{"jsonrpc":"2.0","id":9,"method":"ping"}"#, session: session))?.status == 200
                })
            let replayed = try await Self.events(Self.resume(first, session: session, after: lastSeen2))
            #expect(replayed.map(\.data).last?.contains(#""id":5,"result""#) == true, "\(replayed)")

            // Ids that are not ours, or of another session's stream, get nothing.
            let bogus = try await HTTPClient.shared.execute(Self.resume(second, session: session, after: "not-an-id"), timeout: .seconds(10))
            #expect(bogus.status == .badRequest)
            let other = try #require(try await Self.post(second, Self.initialize).session)
            var foreign = Self.resume(second, session: other, after: lastSeen)
            foreign.headers.replaceOrAdd(name: "Last-Event-ID", value: lastSeen)
            let peek = try await Self.events(foreign, within: .seconds(1))
            #expect(peek.isEmpty, "another session's events never leak: \(peek)")
        }
    }

    @Test func aResumedStreamWhoseGatewayDiedEndsAtOnceWithAnError() async throws {
        try await withTwoGateways { mesh, first, second, _ in
            let session = try #require(try await Self.post(first, Self.initialize).session)
            // A long call on the first gateway; the client loses the stream, and that gateway dies.
            let head = try await Self.events(Self.request(first, Self.slowCall(id: 6, milliseconds: 60_000), session: session), upTo: 1)
            let lastSeen = try #require(head.first?.id)
            await mesh.processes["gateway"]?.stop(signal: SIGKILL)
            // Resumed on the other gateway: not a wait for an answer that cannot come, but an error.
            let start = ContinuousClock.now
            let rest = try await Self.events(Self.resume(second, session: session, after: lastSeen))
            #expect(ContinuousClock.now - start < .seconds(15), "ended after \(ContinuousClock.now - start)")
            #expect(rest.last?.data.contains(#""id":6,"error""#) == true && rest.last?.data.contains("stopped before it answered") == true, "\(rest)")
        }
    }

    @Test func aServersQuestionReachesTheClientWhoseCallItServes() async throws {
        try await withTwoGateways { _, first, _, _ in
            let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/mcp_elicitation_check.py").path
            let python = try StdioServerTests.python
            let legacy = try ChildProcess(
                name: "python-elicit", executable: URL(fileURLWithPath: python), arguments: [script, first, "legacy", "ask__greet_asking"],
                environment: TestMesh.clientEnvironment)
            #expect(await legacy.waitForExit(timeout: .seconds(60)) == 0, "\(legacy.output)")
            #expect(legacy.output.contains(#""text": "Hello, Ada!""#) && legacy.output.contains("What is your name?"), "\(legacy.output)")
            // The stateless era has no way to ask mid-call: the server gets a clear refusal, the client an error.
            let stateless = try ChildProcess(
                name: "python-elicit", executable: URL(fileURLWithPath: python), arguments: [script, first, "auto", "ask__greet_asking"],
                environment: TestMesh.clientEnvironment)
            _ = await stateless.waitForExit(timeout: .seconds(60))
            #expect(stateless.output.contains("2026-07-28"), "\(stateless.output)")
        }
    }

    @Test func aServersQuestionIsRefusedNotGuessedWhileTwoCallsAreInFlight() async throws {
        try await withTwoGateways { _, first, _, _ in
            let script = try TestEnvironment.repository.appendingPathComponent("Tests/Python/mcp_elicitation_check.py").path
            let python = try StdioServerTests.python
            // Two clients (two sessions, maybe two tenants) call the same server; each call asks
            // while the other is in flight: the gateway cannot tell whose question it is.
            let clients = try (0..<2).map { _ in
                try ChildProcess(
                    name: "python-elicit", executable: URL(fileURLWithPath: python), arguments: [script, first, "legacy", "ask__greet_asking_later"],
                    environment: TestMesh.clientEnvironment)
            }
            for client in clients {
                #expect(await client.waitForExit(timeout: .seconds(90)) == 0, "\(client.output)")
                #expect(client.output.contains("refused: ") && client.output.contains("no single client request"), "\(client.output)")
                #expect(client.output.contains(#""asked": []"#), "no client was asked: \(client.output)")
            }
        }
    }

    @Test func resourceUpdatesReachTheSubscribersStreamOnAnyReplica() async throws {
        try await withTwoGateways { _, first, second, _ in
            let session = try #require(try await Self.post(first, Self.initialize).session)
            let bystander = try #require(try await Self.post(first, Self.initialize).session)
            func standing(_ session: String) -> HTTPClientRequest {
                var request = HTTPClientRequest(url: second)
                request.headers.add(name: "Accept", value: "text/event-stream")
                request.headers.add(name: "Mcp-Session-Id", value: session)
                request.headers.add(name: "MCP-Protocol-Version", value: "2025-06-18")
                return request.authorized()
            }
            let myStream = try await Self.open(standing(session))
            let theirStream = try await Self.open(standing(bystander))
            async let mine = Self.events(of: myStream, within: .seconds(3))
            async let theirs = Self.events(of: theirStream, within: .seconds(3))
            let subscribed = try await Self.post(
                first, #"{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"bench+bench://readme"}}"#, session: session)
            #expect(subscribed.body.contains(#""result":{}"#), "\(subscribed.body)")
            let received = try await mine
            #expect(
                received.contains {
                    $0.data == #"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"bench+bench://readme"}}"#
                }, "\(received)")
            #expect(try await theirs.isEmpty, "only the subscriber hears about it")
        }
    }

    @Test func aCancellationSentToAnyReplicaStopsTheCall() async throws {
        try await withTwoGateways { _, first, second, _ in
            let session = try #require(try await Self.post(first, Self.initialize).session)
            let started = ContinuousClock.now
            // The call's first progress event says it runs; the cancellation goes to the other replica.
            let answer = try await Self.events(Self.request(first, Self.slowCall(id: 6, milliseconds: 10_000), session: session)) {
                let cancel = try await Self.post(
                    second, #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":6,"reason":"user"}}"#, session: session)
                #expect(cancel.status == 202)
            }
            #expect(answer.last?.data.contains("-32800") == true, "\(answer)")
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }
}
