import Synchronization

/// Calls waiting on this gateway for a decision, by request id. A change announced for a request
/// wakes its waiters; each then reads the request's state back from the approvals service (the
/// announcement only says "look again"). A generation per request closes the gap between reading
/// the state and starting to wait: a change in between is not missed.
package final class ApprovalWaiters: Sendable {
    private struct Entry {
        var generation = 0
        var watchers = 0
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var nextTicket = 0
    }

    private let state = Mutex(State())

    package init() {}

    /// Starts watching `id` (its changes are counted from now) and returns the current generation.
    package func watch(_ id: String) -> Int {
        state.withLock { state in
            state.entries[id, default: Entry()].watchers += 1
            return state.entries[id]!.generation
        }
    }

    package func unwatch(_ id: String) {
        state.withLock { state in
            guard var entry = state.entries[id] else { return }
            entry.watchers -= 1
            state.entries[id] = entry.watchers <= 0 && entry.waiting.isEmpty ? nil : entry
        }
    }

    package func generation(_ id: String) -> Int { state.withLock { $0.entries[id]?.generation ?? 0 } }

    /// Whether anyone on this gateway waits for `id`.
    package func isWatched(_ id: String) -> Bool { state.withLock { $0.entries[id] != nil } }

    /// A change of `id`: its waiters wake.
    package func changed(_ id: String) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard var entry = state.entries[id] else { return [] }
            entry.generation += 1
            let waiting = Array(entry.waiting.values)
            entry.waiting.removeAll()
            state.entries[id] = entry
            return waiting
        }
        for continuation in woken { continuation.resume() }
    }

    /// Returns once `id` changed after `generation`, after `timeout`, or when the task is cancelled.
    package func wait(_ id: String, after generation: Int, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: timeout) }
            group.addTask { await self.waitForChange(id, after: generation) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForChange(_ id: String, after generation: Int) async {
        let ticket = state.withLock { state -> Int in
            state.nextTicket += 1
            return state.nextTicket
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    var entry = state.entries[id, default: Entry()]
                    if entry.generation > generation || Task.isCancelled { return true }
                    entry.waiting[ticket] = continuation
                    state.entries[id] = entry
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { state in state.entries[id]?.waiting.removeValue(forKey: ticket) }?.resume()
        }
    }
}
