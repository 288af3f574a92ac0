import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import WardenMCP

/// A Streamable HTTP MCP server: each request is a POST; the answer is one JSON message or an SSE
/// stream that carries notifications and server requests before the reply. The session id from
/// `initialize` goes on every later request. When the server forgets the session (404: it
/// restarted, say), it did not process the request: the connection starts a new session and sends
/// that request once more, so a restart of the server costs the client no call.
package final class StreamableHTTPConnection: DownstreamConnection {
    package let serverID: String
    let spec: HTTPServerSpec
    /// Resolves `spec.headers` (secret references) for each request; what answers are scrubbed of.
    let credentials: ServerCredentials
    let logger: Logger
    /// Its read timeout is the server's call timeout: the deadline covers an answer's head and an
    /// event stream, the read timeout an answer that stalls after its head.
    let client: DownstreamHTTPClient
    package let incoming: AsyncStream<JSONRPCMessage>
    private let incomingContinuation: AsyncStream<JSONRPCMessage>.Continuation
    private let ended: AsyncStream<String>.Continuation
    private let endings: AsyncStream<String>
    /// Cancellations, posted by a child task of `serve`: the caller that gave up does not wait.
    private let cancellations: AsyncStream<JSONRPCMessage>
    private let cancellationsContinuation: AsyncStream<JSONRPCMessage>.Continuation
    private let state = Mutex(State())

    private struct State {
        var nextID = 0
        var sessionID: String?
        var protocolVersion: String?
        var finished: String?
        /// What the handshake sent, to start a new session with when the server forgets ours.
        var initializeParams: JSONValue?
        /// Fired when a renewal of the session in progress ends: other messages wait for it.
        var renewal: StopSignal?
        /// The last request URL, read (it changes only when a credential in it does).
        var target: (url: String, target: DownstreamHTTPTarget)?
    }

    package init(
        serverID: String, spec: HTTPServerSpec, credentials: ServerCredentials? = nil, callTimeout: Duration = .seconds(30), logger: Logger
    ) {
        self.serverID = serverID
        self.spec = spec
        self.client = DownstreamHTTPClient(readTimeout: TimeAmount(callTimeout))
        self.credentials = credentials ?? ServerCredentials(serverID: serverID, headers: spec.headers)
        self.logger = logger
        (incoming, incomingContinuation) = AsyncStream.makeStream(of: JSONRPCMessage.self, bufferingPolicy: .bufferingNewest(1_024))
        (endings, ended) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingOldest(1))
        (cancellations, cancellationsContinuation) = AsyncStream.makeStream(of: JSONRPCMessage.self, bufferingPolicy: .bufferingNewest(256))
    }

    /// Waits until the connection is unusable (session gone, server unreachable) or stopped;
    /// meanwhile posts the cancellations of calls the gateway gave up on.
    package func serve() async throws -> String {
        await withTaskGroup(of: String?.self) { group in
            group.addTask {
                for await reason in self.endings { return reason }
                return "stopped"
            }
            group.addTask {
                await withDiscardingTaskGroup { posts in
                    for await message in self.cancellations { posts.addTask { try? await self.send(message) } }
                }
                return nil
            }
            defer { group.cancelAll() }
            while let next = await group.next() {
                if let reason = next { return reason }
            }
            return "stopped"
        }
    }

    package func cancelled(_ id: Int, reason: String) {
        cancellationsContinuation.yield(.cancellation(of: id, reason: reason))
    }

    /// Ends the session on the server (DELETE, as the specification asks) and the connection.
    package func stop(grace: Duration) async {
        let session = state.withLock { $0.sessionID }
        if let session, let target = try? await target() {
            var headers = HTTPHeaders()
            for (name, value) in (try? await credentials.requestHeaders()) ?? [:] { headers.add(name: name, value: value) }
            headers.add(name: "Mcp-Session-Id", value: session)
            _ = try? await client.execute(
                .DELETE, target, headers: headers, body: nil, deadline: .now() + .milliseconds(Int64(grace.components.seconds * 1000 + 1)),
                maximumBodyBytes: spec.maximumMessageBytes)
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
        client.shutdown()
        ended.yield(reason)
        ended.finish()
        incomingContinuation.finish()
        cancellationsContinuation.finish()
    }

    package func request(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue {
        let (id, refusal) = state.withLock { state -> (Int, String?) in
            state.nextID += 1
            if method == "initialize" { state.initializeParams = params }
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

    package func send(_ message: JSONRPCMessage) async throws {
        let response = try await post(message, timeout: .seconds(30))
        guard (200..<300).contains(response.status.code) else {
            throw DownstreamError(.unavailable, server: serverID, "\(message.method ?? "a reply") was answered HTTP \(response.status.code)")
        }
    }

    private func post(_ message: JSONRPCMessage, timeout: Duration) async throws -> DownstreamHTTPClient.Response {
        try await postInSession(message, timeout: timeout).response
    }

    /// Where requests go: the request URL (which may carry a credential) read once while it stays
    /// the same.
    private func target() async throws -> DownstreamHTTPTarget {
        let url = try await credentials.requestURL(spec.url)
        if let known = state.withLock({ $0.target }), known.url == url { return known.target }
        do {
            let target = try DownstreamHTTPTarget(url: url)
            state.withLock { $0.target = (url, target) }
            return target
        } catch {
            throw DownstreamError(.unavailable, server: serverID, "\(spec.origin) is not an http or https URL")
        }
    }

    /// Posts a message in the current session; returns the answer and the session it was sent in.
    /// A JSON answer comes whole: what failed while its body was read fails this request only.
    private func postInSession(_ message: JSONRPCMessage, timeout: Duration) async throws -> (
        response: DownstreamHTTPClient.Response, session: String?
    ) {
        // While the session is being renewed, only the renewal's own handshake goes out.
        if message.method != "initialize", message.method != "notifications/initialized", let renewal = state.withLock({ $0.renewal }) {
            await renewal.wait()
        }
        let target = try await target()
        var headers = HTTPHeaders()
        for (name, value) in try await credentials.requestHeaders() { headers.add(name: name, value: value) }
        headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        headers.replaceOrAdd(name: "Accept", value: "application/json, text/event-stream")
        let (session, version) = state.withLock { ($0.sessionID, $0.protocolVersion) }
        if let session { headers.add(name: "Mcp-Session-Id", value: session) }
        if let version { headers.add(name: "MCP-Protocol-Version", value: version) }
        headers.addTraceContext()
        let method = message.method ?? "the request"
        do {
            // Only requests wait for a connection: answers to the server's own requests and
            // notifications never do (calls waiting on those answers may hold every connection).
            var isRequest = false
            if case .request = message { isRequest = true }
            let response = try await client.execute(
                .POST, target, headers: headers, body: ByteBuffer(bytes: message.json.serialized()), deadline: .now() + TimeAmount(timeout),
                maximumBodyBytes: spec.maximumMessageBytes, beyondLimit: !isRequest)
            return (response, session)
        } catch {
            throw failure(error, method: method, beforeTheAnswer: true)
        }
    }

    /// One request. The client's deadline covers the response head, its read timeout (the call
    /// timeout) a JSON body that stalls; an event stream, which may carry the reply long after the
    /// head, races what is left.
    private func exchange(_ message: JSONRPCMessage, id: Int, method: String, deadline: ContinuousClock.Instant, renewed: Bool = false) async throws
        -> JSONValue
    {
        let (response, session) = try await postInSession(message, timeout: deadline - .now)
        switch response.status.code {
        case 200:
            break
        case 404 where session != nil && !renewed && method != "initialize":
            // The server did not process the request: renew the session and send it once more.
            try await renewSession(replacing: session, deadline: deadline)
            return try await exchange(message, id: id, method: method, deadline: deadline, renewed: true)
        case 404 where session != nil:
            end("the server ended the session")
            throw DownstreamError(.unavailable, server: serverID, "the server ended the session; reconnecting")
        default:
            throw DownstreamError(.unavailable, server: serverID, "\(method) was answered HTTP \(response.status.code)")
        }
        if method == "initialize", let session = response.headers.first(name: "Mcp-Session-Id") {
            state.withLock { $0.sessionID = session }
        }
        let reply: JSONRPCMessage
        switch response.body {
        case .events(let events):
            reply = try await withThrowingTaskGroup(of: JSONRPCMessage.self) { group in
                group.addTask { try await self.readEventStream(events, id: id, method: method) }
                group.addTask {
                    try await Task.sleep(until: deadline)
                    throw DownstreamError(.timeout, server: self.serverID, "no answer to \(method) in time")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        case .whole(let body) where response.headers.first(name: "Content-Type")?.lowercased().hasPrefix("application/json") == true:
            var leakGuard = LeakGuard(credentials)
            reply = leakGuard.scrub(try parse(body.readableBytesView))
        case .whole:
            throw DownstreamError(
                .protocolViolation, server: serverID, "\(method) was answered with neither JSON nor an event stream")
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

    /// A new session after the server forgot `old`: the handshake again, with what the first one
    /// sent. Another call that already renewed it leaves nothing to do.
    /// Calls that hit the same 404 meanwhile wait for this renewal and are sent again in the new
    /// session. A server that restarted may list other tools: its lists are read again.
    private func renewSession(replacing old: String?, deadline: ContinuousClock.Instant) async throws {
        let signal = StopSignal()
        let (params, current, id) = state.withLock { state -> (JSONValue?, StopSignal?, Int) in
            state.nextID += 1
            if let renewal = state.renewal { return (nil, renewal, state.nextID) }
            guard state.sessionID == old else { return (nil, nil, state.nextID) }
            state.sessionID = nil
            state.renewal = signal
            return (state.initializeParams, nil, state.nextID)
        }
        if let current { return await current.wait() }
        guard state.withLock({ $0.renewal === signal }) else { return }
        defer {
            state.withLock { $0.renewal = nil }
            signal.fire()
        }
        guard let params else {
            end("the server ended the session")
            throw DownstreamError(.unavailable, server: serverID, "the server ended the session; reconnecting")
        }
        logger.info("the MCP server forgot the gateway's session; starting a new one")
        let message = JSONRPCMessage.request(id: .number(String(id)), method: "initialize", params: params)
        _ = try await exchange(message, id: id, method: "initialize", deadline: deadline, renewed: true)
        try await send(.notification(method: "notifications/initialized", params: nil))
        for listing in DownstreamSupervisor.listings.keys.sorted() {
            incomingContinuation.yield(.notification(method: listing, params: nil))
        }
    }

    /// Reads events until the reply to `id`; everything else the server sends on the way
    /// (progress, logging, its own requests) goes to `incoming`.
    private func readEventStream(_ body: AsyncThrowingStream<ByteBuffer, any Error>, id: Int, method: String) async throws -> JSONRPCMessage {
        var parser = ServerSentEventParser(maximumEventBytes: spec.maximumMessageBytes)
        // One scan over the whole answer: a value split across events is found too.
        var leakGuard = LeakGuard(credentials)
        do {
            for try await chunk in body {
                for event in try parser.feed(chunk.readableBytesView) where !event.data.isEmpty {
                    let message = leakGuard.scrub(try parse(Array(event.data.utf8)))
                    switch message {
                    case .result(.number(String(id)), _), .error(.number(String(id))?, _): return message
                    case .request, .notification: incomingContinuation.yield(message)
                    default: logger.debug("ignoring a reply to another request on an event stream")
                    }
                }
            }
            // A reader whose task is cancelled sees the stream end.
            if Task.isCancelled { throw CancellationError() }
        } catch is ServerSentEventParser.TooLarge {
            throw DownstreamError(.protocolViolation, server: serverID, "an event is larger than \(spec.maximumMessageBytes) bytes")
        } catch let error as DownstreamError {
            throw error
        } catch {
            throw failure(error, method: method)
        }
        throw DownstreamError(.protocolViolation, server: serverID, "the event stream ended without a reply")
    }

    /// What a request to the server failed with, as the call's error: the caller gave up; no answer,
    /// or an answer that stalled, in time (the deadline, then the call timeout: the client's read
    /// timeout); an answer too large, too fast or cut off (the connection stays: the next request
    /// opens another); a request that cannot be written. A server that cannot be reached before any
    /// answer ends the connection (its supervisor reconnects).
    private func failure(_ error: any Error, method: String, beforeTheAnswer: Bool = false) -> any Error {
        if error is CancellationError || Task.isCancelled { return CancellationError() }
        switch error as? DownstreamHTTPFailure {
        case .noAnswer?, .stalled?:
            return DownstreamError(.timeout, server: serverID, "no answer to \(method) in time")
        case .tooLarge?:
            return DownstreamError(.protocolViolation, server: serverID, "the answer to \(method) is larger than \(spec.maximumMessageBytes) bytes")
        case .overrun?:
            return DownstreamError(.protocolViolation, server: serverID, "the server sent the answer to \(method) faster than it could be read")
        case .invalidRequest?:
            return DownstreamError(.unavailable, server: serverID, "\(method) could not be sent: a header value is not allowed in HTTP")
        case .brokeOff?:
            return DownstreamError(.unavailable, server: serverID, "the answer to \(method) broke off")
        case .invalidURL?, .unreachable?, .notSent?, nil:
            guard beforeTheAnswer else { return DownstreamError(.unavailable, server: serverID, "the answer to \(method) broke off") }
            let reason = "cannot reach \(spec.origin)"
            end(reason)
            return DownstreamError(.unavailable, server: serverID, reason)
        }
    }

    private func parse(_ bytes: some Collection<UInt8>) throws -> JSONRPCMessage {
        do {
            return try JSONRPCMessage.parse(JSONParser().parse(bytes))
        } catch {
            throw DownstreamError(.protocolViolation, server: serverID, "the server sent a message that is not JSON-RPC")
        }
    }
}
