import Foundation
import Logging
import Synchronization
import WardenMCP
import WardenNATS

/// An SSE event id: the stream it belongs to and its position in the shared log. Opaque to clients;
/// they send it back in `Last-Event-ID` to resume. A value type without I/O.
public struct MCPEventID: Sendable, Equatable, CustomStringConvertible {
    /// Random, per SSE stream: 16 hex digits.
    public var stream: String
    /// The event log's sequence number.
    public var sequence: UInt64

    public init(stream: String, sequence: UInt64) {
        self.stream = stream
        self.sequence = sequence
    }

    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, Self.isStreamID(String(parts[0])), let sequence = UInt64(parts[1]), sequence > 0 else { return nil }
        self.init(stream: String(parts[0]), sequence: sequence)
    }

    public var description: String { "\(stream)-\(sequence)" }

    public static func newStream() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(format: "%016llx", generator.next() as UInt64)
    }

    static func isStreamID(_ text: String) -> Bool {
        text.utf8.count == 16 && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }
}

/// One logged event: the message, and whether it ends its stream (the reply to the request).
public struct LoggedEvent: Sendable, Equatable {
    /// Nil for an answer the gateway made up (the instance running the request is gone).
    public var id: MCPEventID?
    public var message: JSONRPCMessage
    public var final: Bool
}

/// Where the events of resumable SSE streams are kept, shared by every gateway replica, so that a
/// client can resume (`Last-Event-ID`) on any replica, even after the one that started the stream
/// was restarted.
public protocol SessionEventLog: Sendable {
    /// Stores an event of the stream answering `request`, run by gateway instance `instance`, and
    /// returns its id.
    func append(session: String, stream: String, _ message: JSONRPCMessage, final: Bool, request: JSONRPCID, instance: String) async throws -> MCPEventID
    /// The events of `after.stream` following `after`, then new ones as they are stored, until the
    /// final one. Ends (without a final event) after `idleTimeout` without any event; ends sooner,
    /// with an error answer to the request, when the instance running it is gone (`isRunning`).
    func replay(session: String, after: MCPEventID, idleTimeout: Duration, isRunning: @escaping @Sendable (String) -> Bool) async throws
        -> AsyncThrowingStream<LoggedEvent, any Error>
}

/// The answer a resumed stream ends with when the gateway instance running its request stopped
/// before answering: the call's outcome is unknown, so the client decides whether to send it again.
func abandonedAnswer(to request: JSONRPCID) -> JSONRPCMessage {
    .error(id: request, JSONRPCError(code: -32603, message: "the gateway instance running this request stopped before it answered; its outcome is unknown"))
}

/// The event log in a JetStream stream (`WARDEN_MCP_EVENTS`, subjects
/// `warden.gateway.events.<session>.<stream>`), bounded by age and size: old events expire.
public final class NATSSessionEventLog: SessionEventLog {
    public static let streamName = "WARDEN_MCP_EVENTS"
    static let finalHeader = "Warden-Final"
    static let instanceHeader = "Warden-Instance"
    static let requestHeader = "Warden-Request"
    let connection: NATSConnection
    let maxAge: Duration
    let maxBytes: Int64
    let logger: Logger
    private let ready = Mutex(false)

    public init(connection: NATSConnection, maxAge: Duration = .seconds(3600), maxBytes: Int64 = 1 << 30, logger: Logger) {
        self.connection = connection
        self.maxAge = maxAge
        self.maxBytes = maxBytes
        self.logger = logger
    }

    static func subject(session: String, stream: String) -> String { "warden.gateway.events.\(session).\(stream)" }

    /// Created on first use, so the gateway starts while NATS is down.
    private func ensureStream() async throws {
        if ready.withLock({ $0 }) { return }
        try await connection.ensureStream(JetStreamStreamSpec(name: Self.streamName, subjects: ["warden.gateway.events.>"], maxAge: maxAge, maxBytes: maxBytes))
        ready.withLock { $0 = true }
    }

    public func append(session: String, stream: String, _ message: JSONRPCMessage, final: Bool, request: JSONRPCID, instance: String) async throws -> MCPEventID {
        try await ensureStream()
        var headers = [Self.instanceHeader: instance, Self.requestHeader: String(decoding: request.json.serialized(), as: UTF8.self)]
        if final { headers[Self.finalHeader] = "1" }
        let ack = try await connection.jetStreamPublish(Self.subject(session: session, stream: stream), payload: Data(message.json.serialized()), headers: headers)
        return MCPEventID(stream: stream, sequence: ack.sequence)
    }

    public func replay(session: String, after: MCPEventID, idleTimeout: Duration, isRunning: @escaping @Sendable (String) -> Bool) async throws
        -> AsyncThrowingStream<LoggedEvent, any Error>
    {
        try await ensureStream()
        // From the event the client saw (not after it): it names the instance and the request.
        let reader = try await connection.read(stream: Self.streamName, subject: Self.subject(session: session, stream: after.stream), startSequence: after.sequence)
        let (events, continuation) = AsyncThrowingStream.makeStream(of: LoggedEvent.self)
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                let last = LastActivity()
                group.addTask {
                    for await delivered in reader {
                        last.touch()
                        if let instance = delivered.message.headers[Self.instanceHeader],
                            let request = delivered.message.headers[Self.requestHeader].flatMap({ try? JSONParser().parse(Array($0.utf8)) }).flatMap(MCPEndpoint.id)
                        {
                            last.origin = (instance, request)
                        }
                        guard delivered.streamSequence > after.sequence else { continue }
                        guard let message = try? JSONRPCMessage.parse(JSONParser().parse(delivered.message.payload)) else { continue }
                        let final = delivered.message.headers[Self.finalHeader] == "1"
                        continuation.yield(LoggedEvent(id: MCPEventID(stream: after.stream, sequence: delivered.streamSequence), message: message, final: final))
                        if final { break }
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(500))
                        if ContinuousClock.now - last.instant > idleTimeout { break }
                        // The instance running the request is gone (no heartbeat): it will never answer.
                        if let (instance, request) = last.origin, ContinuousClock.now - last.instant > .seconds(1), !isRunning(instance) {
                            continuation.yield(LoggedEvent(id: nil, message: abandonedAnswer(to: request), final: true))
                            break
                        }
                    }
                }
                await group.next()
                group.cancelAll()
            }
            continuation.finish()
            await reader.close()
        }
        continuation.onTermination = { _ in task.cancel() }
        return events
    }
}

/// When something last happened on a replayed stream, and which instance runs its request; shared
/// by the reading and the watching task.
final class LastActivity: Sendable {
    private let value = Mutex(ContinuousClock.now)
    private let running = Mutex<(instance: String, request: JSONRPCID)?>(nil)
    func touch() { value.withLock { $0 = .now } }
    var instant: ContinuousClock.Instant { value.withLock { $0 } }
    var origin: (instance: String, request: JSONRPCID)? {
        get { running.withLock { $0 } }
        set { running.withLock { $0 = newValue } }
    }
}
