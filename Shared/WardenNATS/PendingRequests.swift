import Foundation
import Synchronization

/// The table of requests waiting for a reply on this connection's inbox.
///
/// Each entry is resumed exactly once, by whoever removes it: the reply handler, the deadline sweep,
/// the cancellation handler, or `failAll` when the connection closes. Deadlines are checked by one
/// sweeper thread every few milliseconds rather than a timer per request: a timer per request cost
/// two cross-thread wake-ups on the hot path.
final class PendingRequests: Sendable {
    private struct Entry {
        var continuation: CheckedContinuation<NATSMessage, any Error>
        var deadline: ContinuousClock.Instant
        var subject: String
    }

    private struct State {
        var nextToken: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
        var closed = false
    }

    private let state = Mutex(State())

    /// Registers a waiter and returns its token, or nil (after resuming it with `connectionClosed`)
    /// if the table is closed.
    func register(
        _ continuation: CheckedContinuation<NATSMessage, any Error>,
        deadline: ContinuousClock.Instant,
        subject: String
    ) -> UInt64? {
        let token = state.withLock { state -> UInt64? in
            guard !state.closed else { return nil }
            state.nextToken &+= 1
            state.entries[state.nextToken] = Entry(continuation: continuation, deadline: deadline, subject: subject)
            return state.nextToken
        }
        if token == nil { continuation.resume(throwing: NATSError(.connectionClosed, "connection closed")) }
        return token
    }

    func succeed(_ token: UInt64, with message: NATSMessage) {
        remove(token)?.continuation.resume(returning: message)
    }

    func fail(_ token: UInt64, with error: any Error) {
        remove(token)?.continuation.resume(throwing: error)
    }

    /// Fails every waiter whose deadline has passed.
    func expire(now: ContinuousClock.Instant) {
        let expired = state.withLock { state -> [Entry] in
            var expired: [Entry] = []
            for (token, entry) in state.entries where entry.deadline <= now {
                expired.append(entry)
                state.entries[token] = nil
            }
            return expired
        }
        for entry in expired {
            entry.continuation.resume(throwing: NATSError(.timeout, "no reply on \(entry.subject) before the deadline"))
        }
    }

    /// Fails every waiter and refuses new ones (the connection is closing).
    func failAll(with error: NATSError) {
        let entries = state.withLock { state -> [Entry] in
            state.closed = true
            defer { state.entries.removeAll() }
            return Array(state.entries.values)
        }
        for entry in entries { entry.continuation.resume(throwing: error) }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    private func remove(_ token: UInt64) -> Entry? {
        state.withLock { $0.entries.removeValue(forKey: token) }
    }
}
