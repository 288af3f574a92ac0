import Foundation
import NIOCore
import Synchronization

/// The table of requests waiting for a reply on this connection's inbox.
///
/// Each entry is resumed exactly once, by whoever removes it: the reply handler, the deadline timer,
/// the cancellation handler, or `failAll` when the connection closes.
final class PendingRequests: Sendable {
    private struct Entry {
        var continuation: CheckedContinuation<NATSMessage, any Error>
        var timer: Scheduled<Void>?
    }

    private struct State {
        var nextToken: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
        var closed = false
    }

    private let state = Mutex(State())

    func makeToken() -> UInt64 {
        state.withLock { state in
            state.nextToken &+= 1
            return state.nextToken
        }
    }

    /// Registers a waiter. Returns false (and resumes it with `connectionClosed`) if the table is closed.
    func register(_ token: UInt64, _ continuation: CheckedContinuation<NATSMessage, any Error>) -> Bool {
        let accepted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.entries[token] = Entry(continuation: continuation, timer: nil)
            return true
        }
        if !accepted { continuation.resume(throwing: NATSError(.connectionClosed, "connection closed")) }
        return accepted
    }

    /// Attaches the deadline timer; cancels it if the entry is already gone.
    func attach(_ timer: Scheduled<Void>, to token: UInt64) {
        let attached = state.withLock { state -> Bool in
            guard state.entries[token] != nil else { return false }
            state.entries[token]!.timer = timer
            return true
        }
        if !attached { timer.cancel() }
    }

    func succeed(_ token: UInt64, with message: NATSMessage) {
        guard let entry = remove(token) else { return }
        entry.timer?.cancel()
        entry.continuation.resume(returning: message)
    }

    func fail(_ token: UInt64, with error: any Error) {
        guard let entry = remove(token) else { return }
        entry.timer?.cancel()
        entry.continuation.resume(throwing: error)
    }

    /// Fails every waiter and refuses new ones (the connection is closing).
    func failAll(with error: NATSError) {
        let entries = state.withLock { state -> [Entry] in
            state.closed = true
            defer { state.entries.removeAll() }
            return Array(state.entries.values)
        }
        for entry in entries {
            entry.timer?.cancel()
            entry.continuation.resume(throwing: error)
        }
    }

    var count: Int { state.withLock { $0.entries.count } }

    private func remove(_ token: UInt64) -> Entry? {
        state.withLock { $0.entries.removeValue(forKey: token) }
    }
}
