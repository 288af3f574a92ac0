import NIOCore
import NIOHTTP1

/// One request at a time on one connection, on its event loop: writes the request `begin` is given
/// and reads the answer for its caller — whole, or as an event stream — within the deadline until
/// the head and the read timeout after it. Whatever goes wrong closes the connection, so a
/// connection with half an answer on it is never used again; `Start.ended` (the connection is kept)
/// is called only when an answer ended cleanly after the whole request was written and the server
/// keeps the connection open, or when nothing of the request was written (given up on, or past its
/// deadline, before it began). An answer that is not a success (not 2xx) is handed over at its
/// head, without its body, and closes the connection. (NIO's decoder drops interim 1xx answers.)
///
/// The client calls it directly on its event loop (`begin`, and `abandon` when a caller gives up)
/// through a loop-bound reference, not through pipeline events: one hand-over to the loop a
/// request, no promise to learn that the event arrived (a handler outlives its channel, and fails
/// what comes late).
final class DownstreamHTTPExchange: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Never
    typealias OutboundOut = HTTPClientRequestPart

    /// A request to make, and where its answer goes.
    struct Start: Sendable {
        /// Unique in the process, rising: an abandon or a timer names the request it is for.
        var id: UInt64
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var deadline: NIODeadline
        var readTimeout: TimeAmount?
        var maximumBodyBytes: Int
        /// Resumed once, on the event loop: with the answer's head (and, for a success, the whole
        /// body unless it is an event stream), or with a `DownstreamHTTPFailure` or `CancellationError`.
        var answer: CheckedContinuation<DownstreamHTTPClient.Response, any Error>
        var ended: @Sendable () -> Void
    }

    /// An event stream being handed over. It holds nothing that keeps the stream alive (the caller
    /// has the stream itself), so that a reader that drops it is noticed (`onTermination`).
    private struct Streaming {
        var id: UInt64
        var readTimeout: TimeAmount?
        var ended: @Sendable () -> Void
        var head: HTTPResponseHead
        var continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    }

    private enum State {
        case idle
        /// Written; no head yet.
        case head(Start)
        case whole(Start, HTTPResponseHead, ByteBuffer)
        case events(Streaming)
        case closed
    }

    /// Event-stream parts held for a reader at most; a server that sends faster than that is cut off.
    static let maximumPendingParts = 1_024

    private var state = State.idle
    /// The one timer of the request in progress, and when it fires. It is moved only when the
    /// request's time runs out sooner than that; when it fires early (the answer moved on since), it
    /// is set again for what is left.
    private var timer: Scheduled<Void>?
    private var timerFiresAt = NIODeadline.distantFuture
    /// When a byte of the answer last came (its read timeout runs from there).
    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    /// The last request whose every part was written (a connection it was written on is kept only
    /// after that).
    private var written: UInt64?
    /// The last request begun here; and one abandoned before it began (its abandon overtook it).
    private var lastBegun: UInt64 = 0
    private var abandonedEarly: UInt64?
    /// While a request's head is written: an `invalidHeaderToken` then is the validator refusing
    /// it (the same error read in an answer is the server's fault).
    private var writingHead = false
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(DownstreamHTTPFailure.unreachable)  // nothing is left waiting (already failed when closed)
        self.context = nil
    }

    /// Makes request `start` (on the event loop).
    func begin(_ start: Start) {
        guard case .idle = state, let context, context.channel.isActive else {
            // Nothing was written: the client tries a fresh connection.
            return start.answer.resume(throwing: DownstreamHTTPFailure.notSent)
        }
        lastBegun = start.id
        // Given up on, or past its deadline already (it waited for a connection): not sent for
        // nobody to wait for, and the connection, untouched, is kept for the next request.
        let late = start.deadline <= .now()
        if abandonedEarly == start.id || late {
            abandonedEarly = nil
            start.ended()
            return start.answer.resume(throwing: late ? DownstreamHTTPFailure.noAnswer : CancellationError())
        }
        state = .head(start)
        arm(at: start.deadline, for: start.id, context: context)
        // A head the validator refuses (a header value with a line break) is never sent: it reports
        // `invalidHeaderToken` (`errorCaught`) while it is written, and the request ends there.
        writingHead = true
        context.write(wrapOutboundOut(.head(start.head)), promise: nil)
        writingHead = false
        guard current == start.id else { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = start.id
        let allWritten = context.eventLoop.makePromise(of: Void.self)
        allWritten.futureResult.whenSuccess { handler.value.written = id }
        if let body = start.body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: allWritten)
    }

    /// The caller of request `id` gave up (on the event loop): if it is still this connection's,
    /// its answer is not wanted and the connection closes; one that has not begun yet never will.
    /// An abandon that comes after its answer ended does nothing: the connection may be serving
    /// another request by then.
    func abandon(_ id: UInt64) {
        if current == id {
            fail(CancellationError())
        } else if id > lastBegun {
            abandonedEarly = id
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .head(let start) = state else { return fail(DownstreamHTTPFailure.brokeOff) }
            guard (200..<300).contains(head.status.code) else {
                // Not a success: its status is all the caller reads. The body is not waited for (one
                // that stalls or runs over the limit would hide the status behind a timeout or a size
                // error); the connection, with the body unread, is closed.
                disarm()
                state = .closed
                start.answer.resume(returning: DownstreamHTTPClient.Response(status: head.status, headers: head.headers, body: .whole(ByteBuffer())))
                context.close(promise: nil)
                return
            }
            if Self.isEventStream(head) {
                let (events, continuation) = AsyncThrowingStream.makeStream(
                    of: ByteBuffer.self, bufferingPolicy: .bufferingOldest(Self.maximumPendingParts))
                // A reader that gives up (its task cancelled, or the stream dropped) ends the answer.
                let (handler, loop, id) = (NIOLoopBound(self, eventLoop: context.eventLoop), context.eventLoop, start.id)
                continuation.onTermination = { termination in
                    if case .cancelled = termination { loop.execute { handler.value.abandon(id) } }
                }
                state = .events(Streaming(id: start.id, readTimeout: start.readTimeout, ended: start.ended, head: head, continuation: continuation))
                start.answer.resume(returning: DownstreamHTTPClient.Response(status: head.status, headers: head.headers, body: .events(events)))
            } else {
                state = .whole(start, head, context.channel.allocator.buffer(capacity: 0))
            }
            read(start.id, start.readTimeout, context: context)
        case .body(let part):
            switch state {
            case .whole(let start, let head, var body):
                state = .closed  // the buffer has one owner while it grows
                guard body.readableBytes + part.readableBytes <= start.maximumBodyBytes else {
                    state = .whole(start, head, body)
                    return fail(DownstreamHTTPFailure.tooLarge)
                }
                var part = part
                body.writeBuffer(&part)
                state = .whole(start, head, body)
                read(start.id, start.readTimeout, context: context)
            case .events(let streaming):
                guard case .enqueued = streaming.continuation.yield(part) else { return fail(DownstreamHTTPFailure.overrun) }
                read(streaming.id, streaming.readTimeout, context: context)
            case .idle, .head, .closed:
                fail(DownstreamHTTPFailure.brokeOff)
            }
        case .end:
            switch state {
            case .whole(let start, let head, let body):
                finish(start.id, head, start.ended, context: context)
                start.answer.resume(returning: DownstreamHTTPClient.Response(status: head.status, headers: head.headers, body: .whole(body)))
            case .events(let streaming):
                finish(streaming.id, streaming.head, streaming.ended, context: context)
                streaming.continuation.finish()
            case .idle, .head, .closed:
                fail(DownstreamHTTPFailure.brokeOff)
            }
        }
    }

    /// A successful answer ended: the connection is kept when the whole request went out and the
    /// server keeps the connection open; closed otherwise.
    private func finish(_ id: UInt64, _ head: HTTPResponseHead, _ ended: @Sendable () -> Void, context: ChannelHandlerContext) {
        disarm()
        if written == id, head.isKeepAlive, context.channel.isActive {
            state = .idle
            ended()
        } else {
            state = .closed
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(DownstreamHTTPFailure.unreachable)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The request's head refused as it was written: nothing of it went out.
        if writingHead, let refused = error as? HTTPParserError, refused == .invalidHeaderToken {
            return fail(DownstreamHTTPFailure.invalidRequest)
        }
        fail(DownstreamHTTPFailure.unreachable)
    }

    /// Fails what is waiting and closes the connection. Before the answer's head, `unreachable`
    /// stands as given; once an answer has begun, a failure is `brokeOff` unless it says more.
    private func fail(_ failure: any Error) {
        disarm()
        let previous = state
        state = .closed
        let begun = (failure as? DownstreamHTTPFailure) == .unreachable ? DownstreamHTTPFailure.brokeOff : failure
        switch previous {
        case .head(let start): start.answer.resume(throwing: failure)
        case .whole(let start, _, _): start.answer.resume(throwing: begun)
        case .events(let streaming): streaming.continuation.finish(throwing: begun)
        case .idle, .closed: break
        }
        context?.close(promise: nil)
    }

    /// The request whose answer is awaited or being read.
    private var current: UInt64? {
        switch state {
        case .head(let start), .whole(let start, _, _): start.id
        case .events(let streaming): streaming.id
        case .idle, .closed: nil
        }
    }

    /// When the request in progress times out, and how (nil: it cannot).
    private var expiry: (at: NIODeadline, failure: DownstreamHTTPFailure)? {
        switch state {
        case .head(let start): (start.deadline, .noAnswer)
        case .whole(let start, _, _): start.readTimeout.map { (lastRead + $0, .stalled) }
        case .events(let streaming): streaming.readTimeout.map { (lastRead + $0, .stalled) }
        case .idle, .closed: nil
        }
    }

    /// Part of the answer came: its read timeout (if it has one) runs again from now. The timer
    /// moves only if it would fire too late; one firing too early is set again (`expired`).
    private func read(_ id: UInt64, _ readTimeout: TimeAmount?, context: ChannelHandlerContext) {
        lastRead = .now()
        guard let readTimeout else { return disarm() }
        if timer == nil || lastRead + readTimeout < timerFiresAt { arm(at: lastRead + readTimeout, for: id, context: context) }
    }

    /// The timer for request `id`, at `deadline`. A timer that is no longer the one armed (a
    /// cancelled timer already due may still run), or whose request is over, does nothing.
    private func arm(at deadline: NIODeadline, for id: UInt64, context: ChannelHandlerContext) {
        timer?.cancel()
        timerFiresAt = deadline
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) { handler.value.expired(id, armedFor: deadline) }
    }

    private func expired(_ id: UInt64, armedFor deadline: NIODeadline) {
        guard current == id, deadline == timerFiresAt, let context, let expiry else { return }
        timer = nil
        if NIODeadline.now() >= expiry.at { fail(expiry.failure) } else { arm(at: expiry.at, for: id, context: context) }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
        timerFiresAt = .distantFuture
    }

    static func isEventStream(_ head: HTTPResponseHead) -> Bool {
        head.headers.first(name: "Content-Type")?.lowercased().hasPrefix("text/event-stream") == true
    }
}
