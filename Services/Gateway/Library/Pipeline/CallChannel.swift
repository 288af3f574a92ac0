import Synchronization
import WardenMCP

/// What one client request produces, in order: messages for the client while it runs (progress,
/// logging), then its outcome. The endpoint answers with JSON when the outcome comes first and
/// switches to an SSE stream when a message does.
package enum CallOutput: Sendable, Equatable {
    case message(JSONRPCMessage)
    /// Nothing to say yet, but the call is alive (an SSE comment): clients and proxies do not time out.
    case keepAlive
    case outcome(Result<JSONValue, JSONRPCError>)
}

/// The channel one request's outputs travel through, to one consumer: a small queue with at most
/// one waiting reader. An outcome that comes first is handed straight to the waiting reader (the
/// plain JSON answer); messages wait in order (at most `capacity`; more are dropped) until read.
package final class CallChannel: AsyncSequence, Sendable {
    package typealias Element = CallOutput

    private struct State {
        var buffered: [CallOutput] = []
        var head = 0
        var waiter: CheckedContinuation<CallOutput?, Never>?
        /// The outcome was delivered: nothing follows it.
        var finished = false

        mutating func take() -> CallOutput? {
            guard head < buffered.count else { return nil }
            let output = buffered[head]
            head += 1
            if head == buffered.count {
                buffered.removeAll(keepingCapacity: true)
                head = 0
            }
            return output
        }
    }

    /// Messages kept for a reader that is not reading yet.
    static let capacity = 4_096
    private let state = Mutex(State())

    package init() {}

    func send(_ message: JSONRPCMessage) { deliver(.message(message), last: false) }

    func finish(_ outcome: Result<JSONValue, JSONRPCError>) { deliver(.outcome(outcome), last: true) }

    /// A message for the client if there is one (progress), else a keep-alive.
    func keepAlive(_ message: JSONRPCMessage?) { deliver(message.map(CallOutput.message) ?? .keepAlive, last: false) }

    private func deliver(_ output: CallOutput, last: Bool) {
        let waiter = state.withLock { state -> CheckedContinuation<CallOutput?, Never>? in
            guard !state.finished else { return nil }
            if last { state.finished = true }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            if last || state.buffered.count - state.head < Self.capacity { state.buffered.append(output) }
            return nil
        }
        waiter?.resume(returning: output)
    }

    /// The next output, in order; nil after the outcome, or when the reading task is cancelled.
    package func next() async -> CallOutput? {
        if let ready = state.withLock({ $0.take() }) { return ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<CallOutput?, Never>) in
                let immediate = state.withLock { state -> CallOutput?? in
                    if let output = state.take() { return .some(output) }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }?.resume(returning: nil)
        }
    }

    package struct AsyncIterator: AsyncIteratorProtocol {
        let channel: CallChannel
        package mutating func next() async -> CallOutput? { await channel.next() }
    }

    package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: self) }

    /// The outputs in order, for one reader.
    package var outputs: CallChannel { self }
}
