import ArgumentParser
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import WardenMCP

/// A small, fast MCP server of our own, for the proxy benchmark and the gateway's tests, over
/// stdio, Streamable HTTP (JSON or SSE answers) or the legacy HTTP+SSE transport.
///
/// It offers a tool `echo` (returns its `text`), a tool `slow` (answers after `ms` milliseconds,
/// with progress notifications when the call has a progress token), a resource `bench://readme`, a
/// resource template `bench://items/{id}`, and a prompt `greet` with completion for its argument.
struct BenchMCPServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp-server", abstract: "A minimal, fast MCP server (stdio, streamable-http or sse).")

    enum Transport: String, ExpressibleByArgument { case stdio, streamableHTTP = "streamable-http", sse }

    @Option(help: "stdio, streamable-http or sse.") var transport: Transport = .stdio
    @Option(help: "Port for HTTP transports (0: any free port; the URL is printed on stdout).") var port = 0
    @Flag(help: "Answer Streamable HTTP requests with an SSE stream instead of JSON.") var sseAnswers = false

    func run() async throws {
        switch transport {
        case .stdio: try await serveStdio()
        case .streamableHTTP, .sse: try await serveHTTP()
        }
    }

    /// The reply to one request; `emit` sends what comes before it (progress), as it happens;
    /// `subscribed` sends notifications that belong to no request (resource updates).
    static func answer(
        _ id: JSONRPCID, _ method: String, _ params: JSONValue?, emit: (JSONRPCMessage) async -> Void = { _ in },
        subscribed: @escaping @Sendable (JSONRPCMessage) async -> Void = { _ in }
    ) async -> JSONRPCMessage {
        let result: JSONValue
        switch method {
        case "initialize":
            let requested = params?["protocolVersion"]?.stringValue ?? "2025-06-18"
            result = .object([
                ("protocolVersion", .string(["2024-11-05", "2025-03-26", "2025-06-18"].contains(requested) ? requested : "2025-06-18")),
                (
                    "capabilities",
                    .object([
                        ("tools", .object([])), ("resources", .object([("subscribe", true)])), ("prompts", .object([])), ("completions", .object([])),
                    ])
                ),
                ("serverInfo", .object([("name", "bench"), ("version", "1")])),
            ])
        case "ping":
            result = .object([])
        case "tools/list":
            result = .object([
                (
                    "tools",
                    .array([
                        .object([("name", "echo"), ("inputSchema", .object([("type", "object")]))]),
                        .object([("name", "slow"), ("inputSchema", .object([("type", "object")]))]),
                    ])
                )
            ])
        case "tools/call" where params?["name"] == "slow":
            let milliseconds = Int(params?["arguments"]?["ms"].flatMap { if case .number(let n) = $0 { n } else { nil } } ?? "100") ?? 100
            for step in 1...2 {
                if let token = params?["_meta"]?["progressToken"] {
                    await emit(
                        .notification(
                            method: "notifications/progress",
                            params: .object([("progressToken", token), ("progress", .number(String(step))), ("total", 2)])))
                }
                try? await Task.sleep(for: .milliseconds(milliseconds / 2))
            }
            result = .object([("content", .array([.object([("type", "text"), ("text", "done")])])), ("isError", false)])
        case "tools/call":
            let text = params?["arguments"]?["text"] ?? .string("")
            result = .object([("content", .array([.object([("type", "text"), ("text", text)])])), ("isError", false)])
        case "resources/list":
            result = .object([("resources", .array([.object([("uri", "bench://readme"), ("name", "readme"), ("mimeType", "text/plain")])]))])
        case "resources/templates/list":
            result = .object([("resourceTemplates", .array([.object([("uriTemplate", "bench://items/{id}"), ("name", "item")])]))])
        case "resources/read":
            let uri = params?["uri"]?.stringValue ?? ""
            guard uri == "bench://readme" || uri.hasPrefix("bench://items/") else {
                return .error(id: id, JSONRPCError(code: -32002, message: "Resource not found: \(uri)"))
            }
            result = .object([
                ("contents", .array([.object([("uri", .string(uri)), ("mimeType", "text/plain"), ("text", .string("contents of \(uri)"))])]))
            ])
        case "resources/subscribe", "resources/unsubscribe":
            // A subscriber hears about its resource at once (as if it had just changed).
            if method == "resources/subscribe", let uri = params?["uri"] {
                let update = JSONRPCMessage.notification(method: "notifications/resources/updated", params: .object([("uri", uri)]))
                Task {
                    try? await Task.sleep(for: .milliseconds(100))
                    await subscribed(update)
                }
            }
            result = .object([])
        case "prompts/list":
            result = .object([
                ("prompts", .array([.object([("name", "greet"), ("arguments", .array([.object([("name", "name"), ("required", true)])]))])]))
            ])
        case "prompts/get":
            let name = params?["arguments"]?["name"]?.stringValue ?? "you"
            result = .object([
                ("messages", .array([.object([("role", "user"), ("content", .object([("type", "text"), ("text", .string("Hello, \(name)!"))]))])]))
            ])
        case "completion/complete":
            let prefix = params?["argument"]?["value"]?.stringValue ?? ""
            let values = ["Ada", "Alan", "Grace"].filter { $0.hasPrefix(prefix) }
            result = .object([("completion", .object([("values", .array(values.map { .string($0) })), ("hasMore", false)]))])
        default:
            return .error(id: id, .methodNotFound(method))
        }
        return .result(id: id, result: result)
    }

    func serveStdio() async throws {
        let parser = JSONParser()
        while let line = readLine(strippingNewline: true) {
            guard let value = try? parser.parse(line), let message = try? JSONRPCMessage.parse(value),
                case .request(let id, let method, let params) = message
            else { continue }
            // Requests are served one after another: a slow call holds up the next (enough for a benchmark).
            let write: @Sendable (JSONRPCMessage) -> Void = { FileHandle.standardOutput.write(Data($0.json.serialized() + [0x0A])) }
            let reply = await Self.answer(id, method, params, emit: { write($0) }, subscribed: { write($0) })
            FileHandle.standardOutput.write(Data(reply.json.serialized() + [0x0A]))
        }
    }

    func serveHTTP() async throws {
        let router = Router()
        let sseAnswers = self.sseAnswers
        let streams = Mutex<[String: AsyncStream<ByteBuffer>.Continuation]>([:])
        let sessions = Mutex<Set<String>>([])

        /// Streamable HTTP: one POST, one answer.
        router.post("/mcp") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 4 << 20)
            guard let message = try? JSONRPCMessage.parse(JSONParser().parse(body.readableBytesView)) else {
                return Response(status: .badRequest)
            }
            guard case .request(let id, let method, let params) = message else { return Response(status: .accepted) }
            var headers: HTTPFields = [:]
            if method == "initialize" {
                let session = UUID().uuidString
                sessions.withLock { _ = $0.insert(session) }
                headers[HTTPField.Name("Mcp-Session-Id")!] = session
            } else if let session = request.headers[HTTPField.Name("Mcp-Session-Id")!], !sessions.withLock({ $0.contains(session) }) {
                return Response(status: .notFound)
            }
            if sseAnswers {
                headers[.contentType] = "text/event-stream"
                return Response(
                    status: .ok, headers: headers,
                    body: ResponseBody { writer in
                        func event(_ message: JSONRPCMessage) -> ByteBuffer {
                            ByteBuffer(
                                bytes: ServerSentEvent(event: "message", data: String(decoding: message.json.serialized(), as: UTF8.self)).encoded)
                        }
                        let (progress, sink) = AsyncStream.makeStream(of: JSONRPCMessage.self)
                        let reply = Task {
                            defer { sink.finish() }
                            return await Self.answer(id, method, params) { sink.yield($0) }
                        }
                        for await message in progress { try await writer.write(event(message)) }
                        try await writer.write(event(await reply.value))
                        try await writer.finish(nil)
                    })
            }
            let reply = await Self.answer(id, method, params)
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: reply.json.serialized())))
        }
        router.delete("/mcp") { request, _ -> Response in
            if let session = request.headers[HTTPField.Name("Mcp-Session-Id")!] { sessions.withLock { _ = $0.remove(session) } }
            return Response(status: .noContent)
        }

        /// Legacy HTTP+SSE: the GET stream names the POST endpoint; replies travel on the stream.
        router.get("/sse") { _, _ -> Response in
            let session = UUID().uuidString
            let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
            streams.withLock { $0[session] = continuation }
            continuation.onTermination = { _ in _ = streams.withLock { $0.removeValue(forKey: session) } }
            continuation.yield(ByteBuffer(bytes: ServerSentEvent(event: "endpoint", data: "/messages?session_id=\(session)").encoded))
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: ResponseBody(asyncSequence: stream))
        }
        router.post("/messages") { request, _ -> Response in
            guard let session = request.uri.queryParameters.get("session_id"), let stream = streams.withLock({ $0[session] }) else {
                return Response(status: .notFound)
            }
            let body = try await request.body.collect(upTo: 4 << 20)
            guard let message = try? JSONRPCMessage.parse(JSONParser().parse(body.readableBytesView)) else { return Response(status: .badRequest) }
            if case .request(let id, let method, let params) = message {
                Task {
                    func event(_ message: JSONRPCMessage) -> ByteBuffer {
                        ByteBuffer(bytes: ServerSentEvent(event: "message", data: String(decoding: message.json.serialized(), as: UTF8.self)).encoded)
                    }
                    let reply = await Self.answer(id, method, params) { stream.yield(event($0)) }
                    stream.yield(event(reply))
                }
            }
            return Response(status: .accepted)
        }

        let path = transport == .sse ? "/sse" : "/mcp"
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in
                FileHandle.standardOutput.write(Data("http://127.0.0.1:\(channel.localAddress?.port ?? 0)\(path)\n".utf8))
            }
        )
        try await app.runService()
    }
}
