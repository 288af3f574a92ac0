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
    let logger: Logger
    package let incoming: AsyncStream<JSONRPCMessage>
    private let incomingContinuation: AsyncStream<JSONRPCMessage>.Continuation
    private let pending: PendingReplies
    private let state = Mutex<(endpoint: String?, waiters: [CheckedContinuation<String, any Error>], stream: Task<String, Never>?)>((nil, [], nil))

    package init(serverID: String, spec: HTTPServerSpec, logger: Logger) {
        self.serverID = serverID
        self.spec = spec
        self.logger = logger
        self.pending = PendingReplies(serverID: serverID)
        (incoming, incomingContinuation) = AsyncStream.makeStream(of: JSONRPCMessage.self, bufferingPolicy: .bufferingNewest(1_024))
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

    package func stop(grace: Duration) async {
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
        return await withTaskCancellationHandler {
            await task.value
        } onCancel: {
            task.cancel()
        }
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

    package func request(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue {
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

    package func send(_ message: JSONRPCMessage) async throws {
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
