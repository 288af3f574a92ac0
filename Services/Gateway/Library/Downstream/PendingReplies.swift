import Synchronization
import WardenMCP

/// Calls waiting for a reply from one downstream server, by the id the gateway gave them, each
/// with a deadline. Deadlines are enforced by one periodic `expire(now:)` per connection, not by a
/// timer task per call (which halved throughput). Once `finish` is called, new calls fail at once.
final class PendingReplies: Sendable {
    private struct Call {
        var continuation: CheckedContinuation<JSONValue, any Error>
        var deadline: ContinuousClock.Instant
        var method: String
        var cancelled: @Sendable (Int) -> Void
    }

    private struct State {
        var nextID = 0
        var calls: [Int: Call] = [:]
        var finished: DownstreamError?
    }

    let serverID: String
    private let state = Mutex(State())

    init(serverID: String) {
        self.serverID = serverID
    }

    /// Registers a call and runs `send` with its id; waits for the reply, the deadline, cancellation
    /// or `finish`. `send` returns false when the message could not be handed over.
    /// `cancelled` runs with the id when the caller gives up (cancellation or deadline), so the
    /// transport can tell the server.
    func call(_ method: String, timeout: Duration, send: (Int) -> Bool, cancelled: @escaping @Sendable (Int) -> Void = { _ in }) async throws
        -> JSONValue
    {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        let deadline = ContinuousClock.now + timeout
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JSONValue, any Error>) in
                let refusal = state.withLock { state -> DownstreamError? in
                    if let finished = state.finished { return finished }
                    state.calls[id] = Call(continuation: continuation, deadline: deadline, method: method, cancelled: cancelled)
                    return nil
                }
                if let refusal {
                    continuation.resume(throwing: refusal)
                    return
                }
                // Cancelled before the handler could see the registration: resolve it here.
                if Task.isCancelled { resolve(id, with: .failure(CancellationError())); return }
                if !send(id) {
                    resolve(id, with: .failure(DownstreamError(.unavailable, server: serverID, "the server is not connected")))
                }
            }
        } onCancel: {
            if self.resolve(id, with: .failure(CancellationError())) { cancelled(id) }
        }
    }

    /// Calls waiting for their reply.
    var waiting: Int { state.withLock { $0.calls.count } }

    /// Hands a reply to its caller; false when no call waits for `id` (late or unknown).
    @discardableResult
    func resolve(_ id: Int, with result: Result<JSONValue, any Error>) -> Bool {
        guard let call = state.withLock({ $0.calls.removeValue(forKey: id) }) else { return false }
        call.continuation.resume(with: result)
        return true
    }

    /// Routes a reply message by its id (the gateway's ids are integers).
    func resolve(_ message: JSONRPCMessage) {
        switch message {
        case .result(.number(let literal), let result):
            if let id = Int(literal) { resolve(id, with: .success(result)) }
        case .error(.number(let literal)?, let error):
            if let id = Int(literal) {
                resolve(id, with: .failure(DownstreamError(.serverError, server: serverID, error.message, serverError: error)))
            }
        default:
            break
        }
    }

    /// Fails the calls whose deadline has passed.
    func expire(now: ContinuousClock.Instant) {
        let expired = state.withLock { state -> [(Int, Call)] in
            let late = state.calls.filter { $0.value.deadline <= now }
            for id in late.keys { state.calls[id] = nil }
            return late.map { ($0.key, $0.value) }
        }
        for (id, call) in expired {
            call.continuation.resume(throwing: DownstreamError(.timeout, server: serverID, "no answer to \(call.method) in time"))
            call.cancelled(id)
        }
    }

    /// Every 10 ms, fails calls past their deadline; returns when the calling task is cancelled.
    func sweepDeadlines() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(10))
            expire(now: .now)
        }
    }

    /// Fails every waiting call with `error` and refuses new ones.
    func finish(_ error: DownstreamError) {
        let calls = state.withLock { state -> [Call] in
            if state.finished == nil { state.finished = error }
            defer { state.calls.removeAll() }
            return Array(state.calls.values)
        }
        for call in calls { call.continuation.resume(throwing: error) }
    }

    var isFinished: Bool { state.withLock { $0.finished != nil } }
}
