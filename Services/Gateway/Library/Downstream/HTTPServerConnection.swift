import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import WardenMCP

/// How to reach one remote MCP server.
public struct HTTPServerSpec: Sendable, Codable, Equatable {
    public enum Transport: String, Sendable, Codable {
        /// Streamable HTTP (2025-03-26 and later): POST answered with JSON or an SSE stream.
        case streamableHTTP = "streamable-http"
        /// The legacy HTTP+SSE transport (2024-11-05): a GET event stream plus a POST endpoint it names.
        case sse
    }

    public var url: String
    public var transport: Transport
    /// Sent with every request (for example a static `Authorization`). Values are secrets: never logged.
    public var headers: [String: String]
    public var maximumMessageBytes: Int

    public init(url: String, transport: Transport = .streamableHTTP, headers: [String: String] = [:], maximumMessageBytes: Int = 4 << 20) {
        self.url = url
        self.transport = transport
        self.headers = headers
        self.maximumMessageBytes = maximumMessageBytes
    }

    /// The URL without credentials, query or fragment, for logs and errors.
    public var displayURL: String {
        guard var components = URLComponents(string: url) else { return "(invalid URL)" }
        components.user = nil
        components.password = nil
        components.query = nil
        components.fragment = nil
        return components.string ?? "(invalid URL)"
    }
}

/// The HTTP client for downstream servers: one per process, like `HTTPClient.shared`, but it never
/// follows redirects (per-server headers may hold credentials that must not travel to another
/// host) and gives up connecting after 3 s (a down server fails its calls quickly, and its
/// supervisor marks it unavailable after the first).
enum DownstreamHTTP {
    /// Requests: a body that stalls for 30 s fails the call.
    static let client = make(readTimeout: .seconds(30))
    /// Long-lived event streams (legacy SSE), which may stay silent for long.
    static let streamingClient = make(readTimeout: nil)

    static func make(readTimeout: TimeAmount?) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(3)
        configuration.timeout.read = readTimeout
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 32
        return HTTPClient(eventLoopGroup: .singletonMultiThreadedEventLoopGroup, configuration: configuration)
    }
}

/// A Streamable HTTP MCP server: each request is a POST; the answer is one JSON message or an SSE
/// stream that carries notifications and server requests before the reply. The session id from
/// `initialize` goes on every later request; when the server forgets the session (404), the
/// connection ends and its supervisor reconnects.
public final class StreamableHTTPConnection: DownstreamConnection {
    public let serverID: String
    let spec: HTTPServerSpec
    let logger: Logger
    public let incoming: AsyncStream<JSONRPCMessage>
    private let incomingContinuation: AsyncStream<JSONRPCMessage>.Continuation
    private let ended: AsyncStream<String>.Continuation
    private let endings: AsyncStream<String>
    private let state = Mutex(State())

    private struct State {
        var nextID = 0
        var sessionID: String?
        var protocolVersion: String?
        var finished: String?
    }

    public init(serverID: String, spec: HTTPServerSpec, logger: Logger) {
        self.serverID = serverID
        self.spec = spec
        self.logger = logger
        (incoming, incomingContinuation) = AsyncStream.makeStream(of: JSONRPCMessage.self, bufferingPolicy: .bufferingNewest(1_024))
        (endings, ended) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(1))
    }

    /// Waits until the connection is unusable (session gone, server unreachable) or stopped.
    public func serve() async throws -> String {
        for await reason in endings { return reason }
        return "stopped"
    }

    /// Ends the session on the server (DELETE, as the specification asks) and the connection.
    public func stop(grace: Duration) async {
        let session = state.withLock { $0.sessionID }
        if let session {
            var request = HTTPClientRequest(url: spec.url)
            request.method = .DELETE
            for (name, value) in spec.headers { request.headers.add(name: name, value: value) }
            request.headers.add(name: "Mcp-Session-Id", value: session)
            _ = try? await DownstreamHTTP.client.execute(request, timeout: .milliseconds(Int64(grace.components.seconds * 1000 + 1)))
        }
        end("stopped")
    }

    private func end(_ reason: String) {
        let first = state.withLock { state -> Bool in
            guard state.finished == nil else { return false }
            state.finished = reason
            return true
        }
        guard first else { return }
        ended.yield(reason)
        ended.finish()
        incomingContinuation.finish()
    }

    public func request(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue {
        let (id, refusal) = state.withLock { state -> (Int, String?) in
            state.nextID += 1
            return (state.nextID, state.finished)
        }
        if let refusal { throw DownstreamError(.unavailable, server: serverID, "not connected (\(refusal))") }
        let message = JSONRPCMessage.request(id: .number(String(id)), method: method, params: params)
        do {
            return try await exchange(message, id: id, method: method, deadline: .now + timeout)
        } catch let error as DownstreamError where error.code == .timeout {
            cancelled(id, reason: "the gateway stopped waiting")
            throw error
        } catch is CancellationError {
            cancelled(id, reason: "the gateway stopped waiting")
            throw CancellationError()
        }
    }

    public func send(_ message: JSONRPCMessage) async throws {
        let response = try await post(message, timeout: .seconds(30))
        guard (200..<300).contains(response.status.code) else {
            throw DownstreamError(.unavailable, server: serverID, "\(message.method ?? "a reply") was answered HTTP \(response.status.code)")
        }
    }

    private func post(_ message: JSONRPCMessage, timeout: Duration) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: spec.url)
        request.method = .POST
        for (name, value) in spec.headers { request.headers.add(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: "Accept", value: "application/json, text/event-stream")
        let (session, version) = state.withLock { ($0.sessionID, $0.protocolVersion) }
        if let session { request.headers.add(name: "Mcp-Session-Id", value: session) }
        if let version { request.headers.add(name: "MCP-Protocol-Version", value: version) }
        request.body = .bytes(ByteBuffer(bytes: message.json.serialized()))
        do {
            return try await DownstreamHTTP.client.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw DownstreamError(.timeout, server: serverID, "no answer to \(message.method ?? "the request") in time")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            let reason = "cannot reach \(spec.displayURL)"
            end(reason)
            throw DownstreamError(.unavailable, server: serverID, reason)
        }
    }

    /// One request. The client's deadline covers the response head, its read timeout a stalled JSON
    /// body; an event stream, which may carry the reply long after the head, races what is left.
    private func exchange(_ message: JSONRPCMessage, id: Int, method: String, deadline: ContinuousClock.Instant) async throws -> JSONValue {
        let response = try await post(message, timeout: deadline - .now)
        switch response.status.code {
        case 200:
            break
        case 404 where state.withLock({ $0.sessionID }) != nil:
            end("the server ended the session")
            throw DownstreamError(.unavailable, server: serverID, "the server ended the session; reconnecting")
        default:
            throw DownstreamError(.unavailable, server: serverID, "\(method) was answered HTTP \(response.status.code)")
        }
        if method == "initialize", let session = response.headers.first(name: "Mcp-Session-Id") {
            state.withLock { $0.sessionID = session }
        }
        let contentType = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        let reply: JSONRPCMessage
        if contentType.hasPrefix("text/event-stream") {
            reply = try await withThrowingTaskGroup(of: JSONRPCMessage.self) { group in
                group.addTask { try await self.readEventStream(response.body, id: id) }
                group.addTask {
                    try await Task.sleep(until: deadline)
                    throw DownstreamError(.timeout, server: self.serverID, "no answer to \(method) in time")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } else if contentType.hasPrefix("application/json") {
            let body: ByteBuffer
            do {
                body = try await response.body.collect(upTo: spec.maximumMessageBytes)
            } catch {
                throw DownstreamError(.protocolViolation, server: serverID, "the answer to \(method) is larger than \(spec.maximumMessageBytes) bytes")
            }
            reply = try parse(body.readableBytesView)
        } else {
            throw DownstreamError(.protocolViolation, server: serverID, "\(method) was answered with Content-Type \(contentType.isEmpty ? "(none)" : contentType)")
        }
        switch reply {
        case .result(_, let result):
            if method == "initialize", let version = result["protocolVersion"]?.stringValue { state.withLock { $0.protocolVersion = version } }
            return result
        case .error(_, let error):
            throw DownstreamError(.serverError, server: serverID, error.message, serverError: error)
        default:
            throw DownstreamError(.protocolViolation, server: serverID, "\(method) was not answered with a reply")
        }
    }

    /// Reads events until the reply to `id`; everything else the server sends on the way
    /// (progress, logging, its own requests) goes to `incoming`.
    private func readEventStream(_ body: HTTPClientResponse.Body, id: Int) async throws -> JSONRPCMessage {
        var parser = ServerSentEventParser(maximumEventBytes: spec.maximumMessageBytes)
        do {
            for try await chunk in body {
                for event in try parser.feed(chunk.readableBytesView) where !event.data.isEmpty {
                    let message = try parse(Array(event.data.utf8))
                    switch message {
                    case .result(.number(String(id)), _), .error(.number(String(id))?, _): return message
                    case .request, .notification: incomingContinuation.yield(message)
                    default: logger.debug("ignoring a reply to another request on an event stream")
                    }
                }
            }
        } catch is ServerSentEventParser.TooLarge {
            throw DownstreamError(.protocolViolation, server: serverID, "an event is larger than \(spec.maximumMessageBytes) bytes")
        }
        throw DownstreamError(.protocolViolation, server: serverID, "the event stream ended without a reply")
    }

    private func parse(_ bytes: some Collection<UInt8>) throws -> JSONRPCMessage {
        do {
            return try JSONRPCMessage.parse(JSONParser().parse(bytes))
        } catch {
            throw DownstreamError(.protocolViolation, server: serverID, "the server sent a message that is not JSON-RPC")
        }
    }
}

/// A legacy HTTP+SSE MCP server (protocol 2024-11-05): a long-lived GET event stream whose first
/// `endpoint` event names the URL to POST messages to; replies come back on the event stream.
public final class LegacySSEConnection: DownstreamConnection {
    public let serverID: String
    let spec: HTTPServerSpec
    let logger: Logger
    public let incoming: AsyncStream<JSONRPCMessage>
    private let incomingContinuation: AsyncStream<JSONRPCMessage>.Continuation
    private let pending: PendingReplies
    private let state = Mutex<(endpoint: String?, waiters: [CheckedContinuation<String, any Error>], stream: Task<String, Never>?)>((nil, [], nil))

    public init(serverID: String, spec: HTTPServerSpec, logger: Logger) {
        self.serverID = serverID
        self.spec = spec
        self.logger = logger
        self.pending = PendingReplies(serverID: serverID)
        (incoming, incomingContinuation) = AsyncStream.makeStream(of: JSONRPCMessage.self, bufferingPolicy: .bufferingNewest(1_024))
    }

    /// How long the server has to send its `endpoint` event.
    static let endpointTimeout = Duration.seconds(10)

    /// Holds the event stream open until it ends; returns why.
    public func serve() async throws -> String {
        let reason = await withTaskGroup(of: String?.self) { group in
            group.addTask { await self.readStream() }
            group.addTask { await self.pending.sweepDeadlines(); return nil }
            group.addTask {
                try? await Task.sleep(for: Self.endpointTimeout)
                if self.state.withLock({ $0.endpoint == nil }) && !Task.isCancelled { return "the server did not name its message endpoint" }
                try? await Task.sleep(for: .seconds(365 * 86_400))
                return nil
            }
            let reason = await group.next()!
            group.cancelAll()
            return reason ?? "stopped"
        }
        let error = DownstreamError(.unavailable, server: serverID, reason)
        pending.finish(error)
        incomingContinuation.finish()
        let waiters = state.withLock { state -> [CheckedContinuation<String, any Error>] in
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(throwing: error) }
        return reason
    }

    public func stop(grace: Duration) async {
        state.withLock { $0.stream }?.cancel()
    }

    private func readStream() async -> String {
        var request = HTTPClientRequest(url: spec.url)
        for (name, value) in spec.headers { request.headers.add(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
        let task = Task { () -> String in
            do {
                let response = try await DownstreamHTTP.streamingClient.execute(request, timeout: .seconds(30))
                guard response.status == .ok else { return "the event stream was answered HTTP \(response.status.code)" }
                var parser = ServerSentEventParser(maximumEventBytes: spec.maximumMessageBytes)
                for try await chunk in response.body {
                    for event in try parser.feed(chunk.readableBytesView) { handle(event) }
                }
                return "the server closed the event stream"
            } catch is ServerSentEventParser.TooLarge {
                return "an event is larger than \(spec.maximumMessageBytes) bytes"
            } catch {
                return Task.isCancelled ? "stopped" : "cannot reach \(spec.displayURL)"
            }
        }
        state.withLock { $0.stream = task }
        return await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
    }

    private func handle(_ event: ServerSentEvent) {
        if event.event == "endpoint" {
            guard let base = URL(string: spec.url), let resolved = URL(string: event.data, relativeTo: base)?.absoluteURL,
                resolved.host == base.host, resolved.port == base.port, resolved.scheme == base.scheme
            else {
                logger.error("ignoring an endpoint event that points at another origin")
                return
            }
            let waiters = state.withLock { state -> [CheckedContinuation<String, any Error>] in
                state.endpoint = resolved.absoluteString
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: resolved.absoluteString) }
            return
        }
        guard let message = try? JSONRPCMessage.parse(JSONParser().parse(Array(event.data.utf8))) else {
            logger.warning("ignoring an event that is not JSON-RPC")
            return
        }
        switch message {
        case .request, .notification: incomingContinuation.yield(message)
        case .result, .error: pending.resolve(message)
        }
    }

    /// The POST URL, once the server has named it.
    private func endpoint() async throws -> String {
        if let known = state.withLock({ $0.endpoint }) { return known }
        return try await withCheckedThrowingContinuation { continuation in
            let known = state.withLock { state -> String? in
                if state.endpoint == nil { state.waiters.append(continuation) }
                return state.endpoint
            }
            if let known { continuation.resume(returning: known) }
        }
    }

    public func request(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue {
        let url = try await endpoint()
        return try await pending.call(method, timeout: timeout) { id in
            let message = JSONRPCMessage.request(id: .number(String(id)), method: method, params: params)
            Task {
                do {
                    try await self.send(message, to: url)
                } catch {
                    self.pending.resolve(id, with: .failure(error))
                    // The server no longer takes messages: end the connection so it is re-established.
                    if (error as? DownstreamError)?.message.hasPrefix("cannot reach") == true { await self.stop(grace: .zero) }
                }
            }
            return true
        } cancelled: { id in
            self.cancelled(id, reason: "the gateway stopped waiting")
        }
    }

    public func send(_ message: JSONRPCMessage) async throws {
        try await send(message, to: endpoint())
    }

    private func send(_ message: JSONRPCMessage, to url: String) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in spec.headers { request.headers.add(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: message.json.serialized()))
        let response: HTTPClientResponse
        do {
            response = try await DownstreamHTTP.client.execute(request, timeout: .seconds(30))
        } catch {
            throw DownstreamError(.unavailable, server: serverID, "cannot reach \(spec.displayURL)")
        }
        guard (200..<300).contains(response.status.code) else {
            throw DownstreamError(.unavailable, server: serverID, "\(message.method ?? "a message") was answered HTTP \(response.status.code)")
        }
    }
}
