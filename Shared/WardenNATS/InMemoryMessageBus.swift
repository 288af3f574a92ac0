import Foundation
import Synchronization

/// A process-local `MessageBus` with NATS semantics (wildcards, queue groups, no-responders),
/// for unit tests of code that talks over NATS. Integration tests use a real `nats-server`.
public final class InMemoryMessageBus: MessageBus, Sendable {
    private struct Subscriber {
        var id: UInt64
        var pattern: String
        var queue: String?
        var continuation: AsyncStream<NATSMessage>.Continuation
    }

    private struct State {
        var nextID: UInt64 = 0
        var subscribers: [UInt64: Subscriber] = [:]
        var roundRobin: [String: Int] = [:]
        var connected = true
        var outages: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public var isConnected: Bool { state.withLock { $0.connected } }

    public var outages: UInt64 { state.withLock { $0.outages } }

    /// Simulates an outage: calls fail fast with `.notConnected` until set back.
    public func setConnected(_ connected: Bool) {
        state.withLock { state in
            if state.connected && !connected { state.outages += 1 }
            state.connected = connected
        }
    }

    public func publish(_ subject: String, payload: Data, headers: NATSHeaders, replyTo: String?) throws(NATSError) {
        guard NATSSubject.isValidPublishSubject(subject) else { throw NATSError(.invalidSubject, "invalid subject '\(subject)'") }
        let message = NATSMessage(subject: subject, replyTo: replyTo, headers: headers, payload: payload)
        let targets = try state.withLock { state throws(NATSError) -> [AsyncStream<NATSMessage>.Continuation] in
            guard state.connected else { throw NATSError(.notConnected, "in-memory bus disconnected") }
            return Self.route(subject, in: &state)
        }
        for target in targets { target.yield(message) }
    }

    /// Every plain subscriber gets the message; each queue group gets it once (round robin).
    private static func route(_ subject: String, in state: inout State) -> [AsyncStream<NATSMessage>.Continuation] {
        var targets: [AsyncStream<NATSMessage>.Continuation] = []
        var groups: [String: [Subscriber]] = [:]
        for subscriber in state.subscribers.values.sorted(by: { $0.id < $1.id }) where NATSSubject.matches(subject, pattern: subscriber.pattern) {
            if let queue = subscriber.queue {
                groups["\(subscriber.pattern) \(queue)", default: []].append(subscriber)
            } else {
                targets.append(subscriber.continuation)
            }
        }
        for (key, members) in groups {
            let next = state.roundRobin[key, default: 0]
            targets.append(members[next % members.count].continuation)
            state.roundRobin[key] = next &+ 1
        }
        return targets
    }

    public func subscribe(_ subject: String, queue: String?) throws(NATSError) -> NATSSubscription {
        guard NATSSubject.isValidSubscribeSubject(subject) else { throw NATSError(.invalidSubject, "invalid subject '\(subject)'") }
        let (stream, continuation) = AsyncStream.makeStream(of: NATSMessage.self)
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            state.subscribers[state.nextID] = Subscriber(id: state.nextID, pattern: subject, queue: queue, continuation: continuation)
            return state.nextID
        }
        return NATSSubscription(subject: subject, queue: queue, stream: stream) { [weak self] in
            let removed = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
            removed?.continuation.finish()
        }
    }

    public func request(_ subject: String, payload: Data, headers: NATSHeaders, timeout: Duration) async throws -> NATSMessage {
        let inbox = "_INBOX.memory.\(UUID().uuidString)"
        let replies = try subscribe(inbox, queue: nil)
        defer { replies.unsubscribe() }
        let hasResponder = state.withLock { state in
            state.subscribers.values.contains { NATSSubject.matches(subject, pattern: $0.pattern) }
        }
        guard hasResponder else {
            guard isConnected else { throw NATSError(.notConnected, "in-memory bus disconnected") }
            throw NATSError(.noResponders, "no service is listening on \(subject)")
        }
        try publish(subject, payload: payload, headers: headers, replyTo: inbox)
        return try await withThrowingTaskGroup(of: NATSMessage?.self) { group in
            group.addTask {
                for await reply in replies { return reply }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let reply = first else {
                try Task.checkCancellation()
                throw NATSError(.timeout, "no reply on \(subject) before the deadline")
            }
            return reply
        }
    }
}
