import Foundation
import HTTPTypes
import Logging
import Hummingbird
import NIOCore
import WardenMCP

/// Answers and server-sent event streams of the MCP endpoint.
extension MCPEndpoint {
    /// Runs a request and answers it: JSON when the outcome comes first; an SSE stream when the
    /// server sends something first (progress, logging). Events of a session's streams go to the
    /// shared event log before they are written, so the stream can be resumed anywhere.
    func serve(id: JSONRPCID, method: String, params: JSONValue?, caller: MCPCaller) async -> Response {
        let channel = CallChannel()
        let key = InFlightCalls.RequestKey(session: caller.sessionID, id: id)
        let dispatcher = self.dispatcher
        let task = Task { channel.finish(await dispatcher.handle(method: method, params: params, caller: caller, channel: channel)) }
        dispatcher.calls.track(key, task: task)
        var first: CallOutput?
        for await output in channel.outputs {
            first = output
            break
        }
        switch first {
        case .message(let message)?:
            return stream(first: message, rest: channel, id: id, method: method, caller: caller, key: key)
        case .outcome(let outcome)?:
            dispatcher.calls.untrack(key)
            let reply = Self.reply(to: id, outcome, method: method, caller: caller)
            if caller.sessionID == nil, case .error(_, let error) = reply {
                return Self.statelessError(error, id: id)
            }
            return Self.reply(reply)
        case nil:
            dispatcher.calls.untrack(key)
            return Self.reply(.error(id: id, JSONRPCError(code: -32800, message: "Request cancelled")))
        }
    }

    /// The reply message for an outcome; stateless-era results carry that era's stamps.
    static func reply(to id: JSONRPCID, _ outcome: Result<JSONValue, JSONRPCError>, method: String, caller: MCPCaller) -> JSONRPCMessage {
        switch outcome {
        case .success(let result):
            let stamped = caller.sessionID == nil ? StatelessEnvelope.stamp(result, method: method, serverInfo: serverInfo) : result
            return .result(id: id, result: stamped)
        case .failure(let error):
            return .error(id: id, error)
        }
    }

    private func stream(first: JSONRPCMessage, rest channel: CallChannel, id: JSONRPCID, method: String, caller: MCPCaller, key: InFlightCalls.RequestKey) -> Response {
        let streamID = MCPEventID.newStream()
        let (relay, relayed) = AsyncStream.makeStream(of: ServerSentEvent.self, bufferingPolicy: .bufferingNewest(1_024))
        let events = self.events
        let logger = self.logger
        let calls = dispatcher.calls
        let instanceID = self.instanceID
        // Logging runs apart from the HTTP response: a client that disconnects can still resume.
        Task {
            var warned = false
            func emit(_ message: JSONRPCMessage, final: Bool) async {
                var eventID: String?
                if let session = caller.sessionID {
                    do {
                        eventID = try await events.append(session: session, stream: streamID, message, final: final, request: id, instance: instanceID).description
                    } catch {
                        if !warned { logger.warning("the event log is unavailable; this stream cannot be resumed", metadata: ["error": "\(error)"]) }
                        warned = true
                    }
                }
                relayed.yield(ServerSentEvent(id: eventID, event: "message", data: String(decoding: message.json.serialized(), as: UTF8.self)))
            }
            await emit(first, final: false)
            for await output in channel.outputs {
                switch output {
                case .message(let message): await emit(message, final: false)
                case .outcome(let outcome): await emit(Self.reply(to: id, outcome, method: method, caller: caller), final: true)
                }
            }
            relayed.finish()
            calls.untrack(key)
        }
        return Self.eventStream { writer in
            for await event in relay { try await writer.write(ByteBuffer(bytes: event.encoded)) }
        }
    }

    // MARK: GET

    func get(_ request: Request, agent: AuthenticatedAgent? = nil) async -> Response {
        guard (request.headers[.accept] ?? "").contains("text/event-stream") else {
            return Self.error(.notAcceptable, .invalidRequest("GET opens an event stream: Accept must include text/event-stream"))
        }
        if request.headers[.mcpSessionID] == nil, request.headers[.mcpProtocolVersion].map(StatelessEnvelope.supportedVersions.contains) == true {
            return Self.plain(.methodNotAllowed, "the 2026-07-28 era has no GET stream", allow: "POST")
        }
        guard let session = await session(for: request, agent: agent) else { return sessionProblem(request, id: nil) }
        if let last = request.headers[.lastEventID] {
            guard let after = MCPEventID(last) else {
                return Self.error(.badRequest, .invalidRequest("Last-Event-ID \(last.prefix(64)) is not an event id of this gateway"))
            }
            return await resume(session: session.id, after: after)
        }
        return standingStream(session: session.id, agent: session.agent, org: session.org)
    }

    /// Replays what the client missed on an interrupted stream, then follows it to its end, on
    /// whichever replica the request reached.
    private func resume(session: String, after: MCPEventID) async -> Response {
        let replay: AsyncThrowingStream<LoggedEvent, any Error>
        do {
            replay = try await events.replay(session: session, after: after, idleTimeout: resumeIdleTimeout, isRunning: isGatewayRunning)
        } catch {
            logger.warning("cannot resume an event stream", metadata: ["error": "\(error)"])
            return Self.error(.serviceUnavailable, .internalError("the event log is unavailable; try again"))
        }
        logger.info("event stream resumed", metadata: ["mcp.stream": "\(after.stream)"])
        return Self.eventStream { writer in
            for try await event in replay {
                let data = String(decoding: event.message.json.serialized(), as: UTF8.self)
                try await writer.write(ByteBuffer(bytes: ServerSentEvent(id: event.id?.description, event: "message", data: data).encoded))
            }
        }
    }

    /// The session's standing stream: `list_changed` and other messages that belong to no request.
    private func standingStream(session: String, agent: String?, org: String?) -> Response {
        let (number, messages) = streams.open(session: session, agent: agent, org: org)
        let (relay, relayed) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingNewest(256))
        let interval = keepAliveInterval
        let feeder = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await message in messages {
                        relayed.yield(ServerSentEvent(event: "message", data: String(decoding: message.json.serialized(), as: UTF8.self)).encoded)
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        relayed.yield(Array(": keep-alive\n\n".utf8))
                    }
                }
                await group.next()
                group.cancelAll()
            }
            relayed.finish()
        }
        let streams = self.streams
        return Self.eventStream { writer in
            defer {
                streams.close(number)
                feeder.cancel()
            }
            try await writer.write(ByteBuffer(string: ": stream open\n\n"))
            for await bytes in relay { try await writer.write(ByteBuffer(bytes: bytes)) }
        }
    }

    static func eventStream(_ write: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                try await write(&writer)
                try await writer.finish(nil)
            }
        )
    }
}
