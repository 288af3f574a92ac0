import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenMCP

/// Stage 8: the answer. JSON when the outcome comes first; an SSE stream as soon as the server sends
/// something first (progress, logging). Events of a session's streams go to the shared event log
/// before they are written, so the stream can be resumed on any replica. Stateless-era results get
/// that era's stamps here, and only here.
///
/// The request runs in a task of its own, registered in `InFlightCalls` until it ends: a
/// cancellation that reaches any replica stops it, and it runs on when the HTTP handler has
/// returned an SSE answer or the client has gone (the events are still logged for a resumption).
/// The SSE answer's events are logged and written by the response's own writer.
struct ReplyStage: Sendable {
    let calls: InFlightCalls
    let events: any SessionEventLog
    /// This gateway instance (as its heartbeats name it): recorded with the events it logs.
    let instanceID: String
    let logger: Logger

    func run(_ request: ClientRequest, _ process: @escaping @Sendable (CallChannel) async -> Result<JSONValue, JSONRPCError>) async -> Response {
        let channel = CallChannel()
        let calls = self.calls
        let key = request.key
        // Only a session's requests can be cancelled (the stateless era has no channel for it), and
        // only their ids are unique: stateless requests are not tracked.
        let tracked = request.caller.sessionID != nil
        let task = Task {
            channel.finish(await process(channel))
            if tracked { calls.untrack(key) }
        }
        if tracked { calls.track(key, task: task) }
        switch await channel.next() {
        case .message(let message)?:
            return stream(first: message, rest: channel, request: request)
        case .keepAlive?:
            return stream(first: nil, rest: channel, request: request)
        case .outcome(let outcome)?:
            return answer(request, outcome)
        case nil:
            return answer(request, .failure(.requestCancelled))
        }
    }

    /// A JSON answer. On the stateless path an error carries the specification's HTTP status.
    func answer(_ request: ClientRequest, _ outcome: Result<JSONValue, JSONRPCError>) -> Response {
        if request.caller.sessionID == nil, case .failure(let error) = outcome {
            return Self.statelessFailure(error, id: request.id).response
        }
        return MCPFailure.reply(Self.message(answering: request, outcome))
    }

    /// The reply message for an outcome; stateless-era results carry that era's stamps.
    static func message(answering request: ClientRequest, _ outcome: Result<JSONValue, JSONRPCError>) -> JSONRPCMessage {
        switch outcome {
        case .success(let result):
            let stamped =
                request.caller.sessionID == nil
                ? StatelessEnvelope.stamp(result, method: request.method, serverInfo: GatewayMCPInfo.serverInfo) : result
            return .result(id: request.id, result: stamped)
        case .failure(let error):
            return .error(id: request.id, error)
        }
    }

    /// An error on the stateless path, with the HTTP status the specification gives its code.
    static func statelessFailure(_ error: JSONRPCError, id: JSONRPCID) -> MCPFailure {
        MCPFailure(HTTPResponse.Status(code: StatelessEnvelope.httpStatus(for: error.code)), error, id: id)
    }

    /// The SSE answer: each event is logged, then written. A client that disconnects stops the
    /// writing, not the logging: it can resume the stream on any replica.
    private func stream(first: JSONRPCMessage?, rest channel: CallChannel, request: ClientRequest) -> Response {
        let streamID = MCPEventID.newStream()
        let events = self.events
        let logger = self.logger
        let instanceID = self.instanceID
        return Self.eventStream { writer in
            var warned = false
            var connected = true
            func emit(_ message: JSONRPCMessage, final: Bool) async {
                var eventID: String?
                if let session = request.caller.sessionID {
                    do {
                        eventID = try await events.append(
                            session: session, stream: streamID, message, final: final, request: request.id, instance: instanceID
                        ).description
                    } catch {
                        if !warned { logger.warning("the event log is unavailable; this stream cannot be resumed", metadata: ["error": "\(error)"]) }
                        warned = true
                    }
                }
                guard connected else { return }
                let event = ServerSentEvent(id: eventID, event: "message", data: String(decoding: message.json.serialized(), as: UTF8.self))
                do { try await writer.write(ByteBuffer(bytes: event.encoded)) } catch { connected = false }
            }
            func keepAlive() async {
                guard connected else { return }
                do { try await writer.write(ByteBuffer(string: ": waiting\n\n")) } catch { connected = false }
            }
            if let first { await emit(first, final: false) } else { await keepAlive() }
            while let output = await channel.next() {
                switch output {
                case .message(let message): await emit(message, final: false)
                case .keepAlive: await keepAlive()
                case .outcome(let outcome): await emit(Self.message(answering: request, outcome), final: true)
                }
            }
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
