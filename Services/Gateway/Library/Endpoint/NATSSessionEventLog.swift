import Foundation
import Logging
import Synchronization
import WardenMCP
import WardenNATS

/// The event log in a JetStream stream (`WARDEN_MCP_EVENTS`, subjects
/// `warden.gateway.events.<session>.<stream>`), bounded by age and size: old events expire.
package final class NATSSessionEventLog: SessionEventLog {
    package static let streamName = "WARDEN_MCP_EVENTS"
    static let finalHeader = "Warden-Final"
    static let instanceHeader = "Warden-Instance"
    static let requestHeader = "Warden-Request"
    let connection: NATSConnection
    let maxAge: Duration
    let maxBytes: Int64
    let logger: Logger
    private let ready = Mutex(false)

    package init(connection: NATSConnection, maxAge: Duration = .seconds(3600), maxBytes: Int64 = 1 << 30, logger: Logger) {
        self.connection = connection
        self.maxAge = maxAge
        self.maxBytes = maxBytes
        self.logger = logger
    }

    static func subject(session: String, stream: String) -> String { "warden.gateway.events.\(session).\(stream)" }

    /// Created on first use, so the gateway starts while NATS is down.
    private func ensureStream() async throws {
        if ready.withLock({ $0 }) { return }
        try await connection.ensureStream(
            JetStreamStreamSpec(name: Self.streamName, subjects: ["warden.gateway.events.>"], maxAge: maxAge, maxBytes: maxBytes))
        ready.withLock { $0 = true }
    }

    package func append(session: String, stream: String, _ message: JSONRPCMessage, final: Bool, request: JSONRPCID, instance: String) async throws
        -> MCPEventID
    {
        try await ensureStream()
        var headers = [Self.instanceHeader: instance, Self.requestHeader: String(decoding: request.json.serialized(), as: UTF8.self)]
        if final { headers[Self.finalHeader] = "1" }
        let ack = try await connection.jetStreamPublish(
            Self.subject(session: session, stream: stream), payload: Data(message.json.serialized()), headers: headers)
        return MCPEventID(stream: stream, sequence: ack.sequence)
    }

    package func replay(session: String, after: MCPEventID, idleTimeout: Duration, isRunning: @escaping @Sendable (String) -> Bool) async throws
        -> EventReplay
    {
        try await ensureStream()
        // From the event the client saw (not after it): it names the instance and the request.
        let reader = try await connection.read(
            stream: Self.streamName, subject: Self.subject(session: session, stream: after.stream), startSequence: after.sequence)
        return EventReplay { deliver in
            let (events, continuation) = AsyncStream.makeStream(of: LoggedEvent.self)
            let last = LastActivity()
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await delivered in reader {
                            last.touch()
                            if let instance = delivered.message.headers[Self.instanceHeader],
                                let request = delivered.message.headers[Self.requestHeader].flatMap({ try? JSONParser().parse(Array($0.utf8)) })
                                    .flatMap(JSONRPCID.init)
                            {
                                last.origin = (instance, request)
                            }
                            guard delivered.streamSequence > after.sequence else { continue }
                            guard let message = try? JSONRPCMessage.parse(JSONParser().parse(delivered.message.payload)) else { continue }
                            let final = delivered.message.headers[Self.finalHeader] == "1"
                            continuation.yield(
                                LoggedEvent(id: MCPEventID(stream: after.stream, sequence: delivered.streamSequence), message: message, final: final))
                            if final { break }
                        }
                        continuation.finish()
                    }
                    group.addTask {
                        while true {
                            try await Task.sleep(for: .milliseconds(500))
                            if ContinuousClock.now - last.instant > idleTimeout { break }
                            // The instance running the request is gone (no heartbeat): it will never answer.
                            if let (instance, request) = last.origin, ContinuousClock.now - last.instant > .seconds(1), !isRunning(instance) {
                                continuation.yield(LoggedEvent(id: nil, message: abandonedAnswer(to: request), final: true))
                                break
                            }
                        }
                        continuation.finish()
                    }
                    defer { group.cancelAll() }
                    for await event in events {
                        try await deliver(event)
                        if event.final { break }
                    }
                }
            } catch {
                await reader.close()
                throw error
            }
            await reader.close()
        }
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
