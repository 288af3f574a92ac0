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
    public var id: MCPEventID
    public var message: JSONRPCMessage
    public var final: Bool
}

/// Where the events of resumable SSE streams are kept, shared by every gateway replica, so that a
/// client can resume (`Last-Event-ID`) on any replica, even after the one that started the stream
/// was restarted.
public protocol SessionEventLog: Sendable {
    /// Stores an event and returns its id.
    func append(session: String, stream: String, _ message: JSONRPCMessage, final: Bool) async throws -> MCPEventID
    /// The events of `after.stream` following `after`, then new ones as they are stored, until the
    /// final one. Ends (without a final event) after `idleTimeout` without any event.
    func replay(session: String, after: MCPEventID, idleTimeout: Duration) async throws -> AsyncThrowingStream<LoggedEvent, any Error>
}

/// The event log in a JetStream stream (`WARDEN_MCP_EVENTS`, subjects
/// `warden.gateway.events.<session>.<stream>`), bounded by age and size: old events expire.
public final class NATSSessionEventLog: SessionEventLog {
    public static let streamName = "WARDEN_MCP_EVENTS"
    static let finalHeader = "Warden-Final"
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

    public func append(session: String, stream: String, _ message: JSONRPCMessage, final: Bool) async throws -> MCPEventID {
        try await ensureStream()
        let ack = try await connection.jetStreamPublish(
            Self.subject(session: session, stream: stream),
            payload: Data(message.json.serialized()),
            headers: final ? [Self.finalHeader: "1"] : [:]
        )
        return MCPEventID(stream: stream, sequence: ack.sequence)
    }

    public func replay(session: String, after: MCPEventID, idleTimeout: Duration) async throws -> AsyncThrowingStream<LoggedEvent, any Error> {
        try await ensureStream()
        let reader = try await connection.read(stream: Self.streamName, subject: Self.subject(session: session, stream: after.stream), startSequence: after.sequence + 1)
        let (events, continuation) = AsyncThrowingStream.makeStream(of: LoggedEvent.self)
        let task = Task {
            await withTaskGroup(of: Void.self) { group in
                let last = LastActivity()
                group.addTask {
                    for await delivered in reader {
                        last.touch()
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

/// When something last happened, shared by two tasks.
final class LastActivity: Sendable {
    private let value = Mutex(ContinuousClock.now)
    func touch() { value.withLock { $0 = .now } }
    var instant: ContinuousClock.Instant { value.withLock { $0 } }
}
