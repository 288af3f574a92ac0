import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import WardenMCP

/// A legacy HTTP+SSE MCP server (protocol 2024-11-05): a long-lived GET event stream whose first
/// `endpoint` event names the URL to POST messages to; replies come back on the event stream.
package final class LegacySSEConnection: DownstreamConnection {
    package let serverID: String
    let spec: HTTPServerSpec
    /// Resolves `spec.headers` (secret references) for each request; what answers are scrubbed of.
    let credentials: ServerCredentials
    let logger: Logger
    package let incoming: AsyncStream<JSONRPCMessage>
    private let incomingContinuation: AsyncStream<JSONRPCMessage>.Continuation
    private let pending: PendingReplies
    private let state = Mutex<(endpoint: String?, waiters: [CheckedContinuation<String, any Error>])>((nil, []))
    /// Messages to POST that nobody awaits here (requests, whose replies come on the event stream,
    /// and cancellations): posted by a child task of `serve`.
    private let outgoing: AsyncStream<Outgoing>
    private let outgoingContinuation: AsyncStream<Outgoing>.Continuation
    private let stopping = StopSignal()

    private struct Outgoing: Sendable {
        var message: JSONRPCMessage
        var url: String
        /// The request whose caller waits for the reply, failed if the POST fails.
        var request: Int?
    }

    /// Why a POST failed.
    private enum PostFailure: Error {
        case unreachable
        case refused(status: UInt)
        /// The headers' secrets could not be resolved: this message fails, the connection stays.
        case credentials(DownstreamError)
    }

    package init(serverID: String, spec: HTTPServerSpec, credentials: ServerCredentials? = nil, logger: Logger) {
        self.serverID = serverID
        self.spec = spec
        self.credentials = credentials ?? ServerCredentials(serverID: serverID, headers: spec.headers)
        self.logger = logger
        self.pending = PendingReplies(serverID: serverID)
        (incoming, incomingContinuation) = AsyncStream.makeStream(of: JSONRPCMessage.self, bufferingPolicy: .bufferingNewest(1_024))
        (outgoing, outgoingContinuation) = AsyncStream.makeStream(of: Outgoing.self)
    }

    /// How long the server has to send its `endpoint` event.
    static let endpointTimeout = Duration.seconds(10)

    /// Holds the event stream open until it ends; returns why.
    package func serve() async throws -> String {
        let reason = await withTaskGroup(of: String?.self) { group in
            group.addTask { await self.readStream() }
            group.addTask {
                await self.pending.sweepDeadlines(); return nil
            }
            group.addTask { await self.postOutgoing() }
            group.addTask {
                await self.stopping.wait(); return "stopped"
            }
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
        outgoingContinuation.finish()
        let waiters = state.withLock { state -> [CheckedContinuation<String, any Error>] in
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(throwing: error) }
        return reason
    }

    package func stop(grace: Duration) async {
        stopping.fire()
    }

    private func readStream() async -> String {
        var request: HTTPClientRequest
        do {
            request = HTTPClientRequest(url: try await credentials.requestURL(spec.url))
            for (name, value) in try await credentials.requestHeaders() { request.headers.add(name: name, value: value) }
        } catch {
            return error.message
        }
        request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
        // One scan over the whole event stream: a value split across events is found too.
        var leakGuard = LeakGuard(credentials)
        do {
            let response = try await DownstreamHTTP.streamingClient.execute(request, timeout: .seconds(30))
            guard response.status == .ok else { return "the event stream was answered HTTP \(response.status.code)" }
            var parser = ServerSentEventParser(maximumEventBytes: spec.maximumMessageBytes)
            for try await chunk in response.body {
                for event in try parser.feed(chunk.readableBytesView) { handle(event, scrubbedBy: &leakGuard) }
            }
            return "the server closed the event stream"
        } catch is ServerSentEventParser.TooLarge {
            return "an event is larger than \(spec.maximumMessageBytes) bytes"
        } catch {
            return Task.isCancelled ? "stopped" : "cannot reach \(spec.origin)"
        }
    }

    /// Posts what `request` and `cancelled` queued, concurrently; returns when the server cannot be
    /// reached (the connection ends and is established again) or the queue ends.
    private func postOutgoing() async -> String? {
        do {
            try await withThrowingDiscardingTaskGroup { group in
                for await item in outgoing {
                    group.addTask {
                        do throws(PostFailure) {
                            try await self.post(item.message, to: item.url)
                        } catch {
                            if let id = item.request { self.pending.resolve(id, with: .failure(self.downstreamError(error, item.message))) }
                            if case .unreachable = error {
                                // End the queue too: the loop feeding this group stops, and serve ends.
                                self.outgoingContinuation.finish()
                                throw error
                            }
                        }
                    }
                }
            }
            return nil
        } catch {
            return "cannot reach \(spec.origin)"
        }
    }

    private func handle(_ event: ServerSentEvent, scrubbedBy leakGuard: inout LeakGuard) {
        if event.event == "endpoint" {
            // The origin is what counts; the configured URL's query may hold references.
            guard let base = URL(string: spec.displayURL), let resolved = URL(string: event.data, relativeTo: base)?.absoluteURL,
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
        guard let parsed = try? JSONRPCMessage.parse(JSONParser().parse(Array(event.data.utf8))) else {
            logger.warning("ignoring an event that is not JSON-RPC")
            return
        }
        let message = leakGuard.scrub(parsed)
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

    package func request(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue {
        let url = try await endpoint()
        return try await pending.call(method, timeout: timeout) { id in
            let message = JSONRPCMessage.request(id: .number(String(id)), method: method, params: params)
            if case .terminated = outgoingContinuation.yield(Outgoing(message: message, url: url, request: id)) { return false }
            return true
        } cancelled: { id in
            self.cancelled(id, reason: "the gateway stopped waiting")
        }
    }

    package func send(_ message: JSONRPCMessage) async throws {
        do {
            try await post(message, to: endpoint())
        } catch let failure as PostFailure {
            throw downstreamError(failure, message)
        }
    }

    /// Best effort, posted by `serve`: a server that is gone needs no telling.
    package func cancelled(_ id: Int, reason: String) {
        guard let url = state.withLock({ $0.endpoint }) else { return }
        outgoingContinuation.yield(Outgoing(message: .cancellation(of: id, reason: reason), url: url))
    }

    private func downstreamError(_ failure: PostFailure, _ message: JSONRPCMessage) -> DownstreamError {
        switch failure {
        case .unreachable: DownstreamError(.unavailable, server: serverID, "cannot reach \(spec.origin)")
        case .refused(let status): DownstreamError(.unavailable, server: serverID, "\(message.method ?? "a message") was answered HTTP \(status)")
        case .credentials(let error): error
        }
    }

    private func post(_ message: JSONRPCMessage, to url: String) async throws(PostFailure) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.addTraceContext()
        do {
            for (name, value) in try await credentials.requestHeaders() { request.headers.add(name: name, value: value) }
        } catch {
            throw .credentials(error)
        }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: message.json.serialized()))
        let response: HTTPClientResponse
        do {
            response = try await DownstreamHTTP.client.execute(request, timeout: .seconds(30))
        } catch {
            throw .unreachable
        }
        guard (200..<300).contains(response.status.code) else { throw .refused(status: response.status.code) }
    }
}
