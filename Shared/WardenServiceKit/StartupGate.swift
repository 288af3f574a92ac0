import Synchronization

/// Opens once, when the instance has finished starting (migrations applied). Domain services wait on
/// it before taking requests, so that no request reaches a schema that is not migrated yet.
public final class StartupGate: Sendable {
    private struct State {
        var opened = false
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    public init() {}

    public var isOpen: Bool { state.withLock { $0.opened } }

    public func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.opened = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once open; throws `CancellationError` if the task is cancelled first.
    public func wait() async throws {
        // Open (every request after start-up): no suspension, so no trip through the executor.
        if isOpen { return }
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.opened { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow {
                    continuation.resume()
                } else if Task.isCancelled {
                    // Cancelled before we registered: the cancellation handler found nothing to resume.
                    let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
                    waiter?.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }
}
