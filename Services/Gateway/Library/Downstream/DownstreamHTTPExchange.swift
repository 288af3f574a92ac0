import NIOCore
import NIOHTTP1

/// One request at a time on one connection, on its event loop: writes the request `Start` brings
/// and reads the answer into its promise — whole, or as an event stream — arming the deadline
/// until the head and the read timeout after it. Whatever goes wrong closes the connection, so a
/// connection with half an answer on it is never used again; `Start.ended` is called only when an
/// answer ended cleanly after the whole request was written and the server keeps the connection
/// open. (NIO's decoder drops interim 1xx answers.)
final class DownstreamHTTPExchange: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Never
    typealias OutboundOut = HTTPClientRequestPart

    /// Sent down the pipeline (`triggerUserOutboundEvent`) to make a request.
    struct Start: Sendable {
        /// Unique in the process: an `Abandon`, a timer or a write names the request it is for.
        var id: UInt64
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var deadline: NIODeadline
        var readTimeout: TimeAmount?
        var maximumBodyBytes: Int
        var answer: EventLoopPromise<DownstreamHTTPClient.Response>
        var ended: @Sendable () -> Void
    }

    /// Sent when the caller gave up on request `id`: if it is still this connection's, its answer is
    /// not wanted and the connection closes (an `Abandon` that comes after its answer ended does
    /// nothing: the connection may be serving another request by then).
    struct Abandon: Sendable {
        var id: UInt64
    }

    /// An event stream being handed over. It holds no promise: the answer's future would keep the
    /// stream alive, and a reader that drops the stream must be noticed (`onTermination`).
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
    private var timer: Scheduled<Void>?
    /// The last request whose every part was written (a connection is kept only after that).
    private var written: UInt64?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(DownstreamHTTPFailure.unreachable)  // nothing is left waiting (already failed when closed)
        self.context = nil
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if let start = event as? Start {
            begin(start, context: context)
            promise?.succeed()
        } else if let abandon = event as? Abandon {
            if current == abandon.id { fail(CancellationError()) }
            promise?.succeed()
        } else {
            context.triggerUserOutboundEvent(event, promise: promise)
        }
    }

    private func begin(_ start: Start, context: ChannelHandlerContext) {
        guard case .idle = state, context.channel.isActive else {
            // Nothing was written: the client tries a fresh connection.
            start.answer.fail(DownstreamHTTPFailure.notSent)
            return
        }
        // Past its deadline already (it waited for a connection): not sent for nobody to wait for.
        guard start.deadline > .now() else {
            start.answer.fail(DownstreamHTTPFailure.noAnswer)
            return
        }
        state = .head(start)
        arm(at: start.deadline, .noAnswer, for: start.id, context: context)
        // A head the validator refuses (a header value with a line break) is never sent; it fails the
        // write before it reports the error down the pipeline, so this is told first.
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = start.id
        let headWritten = context.eventLoop.makePromise(of: Void.self)
        headWritten.futureResult.whenFailure { error in
            guard let error = error as? HTTPParserError, error == .invalidHeaderToken, handler.value.current == id else { return }
            handler.value.fail(DownstreamHTTPFailure.invalidRequest)
        }
        let allWritten = context.eventLoop.makePromise(of: Void.self)
        allWritten.futureResult.whenSuccess { handler.value.written = id }
        context.write(wrapOutboundOut(.head(start.head)), promise: headWritten)
        if let body = start.body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: allWritten)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .head(let start) = state else { return fail(DownstreamHTTPFailure.brokeOff) }
            if Self.isEventStream(head) {
                let (events, continuation) = AsyncThrowingStream.makeStream(
                    of: ByteBuffer.self, bufferingPolicy: .bufferingOldest(Self.maximumPendingParts))
                // A reader that gives up (its task cancelled, or the stream dropped) ends the answer.
                let (channel, id) = (context.channel, start.id)
                continuation.onTermination = { termination in
                    if case .cancelled = termination { channel.triggerUserOutboundEvent(Abandon(id: id), promise: nil) }
                }
                state = .events(Streaming(id: start.id, readTimeout: start.readTimeout, ended: start.ended, head: head, continuation: continuation))
                start.answer.succeed(DownstreamHTTPClient.Response(status: head.status, headers: head.headers, body: .events(events)))
            } else {
                state = .whole(start, head, context.channel.allocator.buffer(capacity: 0))
            }
            rearm(start.id, start.readTimeout, context: context)
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
                rearm(start.id, start.readTimeout, context: context)
            case .events(let streaming):
                guard case .enqueued = streaming.continuation.yield(part) else { return fail(DownstreamHTTPFailure.overrun) }
                rearm(streaming.id, streaming.readTimeout, context: context)
            case .idle, .head, .closed:
                fail(DownstreamHTTPFailure.brokeOff)
            }
        case .end:
            switch state {
            case .whole(let start, let head, let body):
                finish(start.id, head, start.ended, context: context)
                start.answer.succeed(DownstreamHTTPClient.Response(status: head.status, headers: head.headers, body: .whole(body)))
            case .events(let streaming):
                finish(streaming.id, streaming.head, streaming.ended, context: context)
                streaming.continuation.finish()
            case .idle, .head, .closed:
                fail(DownstreamHTTPFailure.brokeOff)
            }
        }
    }

    /// An answer ended: the connection is kept when the whole request went out, the answer is a
    /// final one and the server keeps the connection open; closed otherwise.
    private func finish(_ id: UInt64, _ head: HTTPResponseHead, _ ended: @Sendable () -> Void, context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if written == id, head.status.code >= 200, head.isKeepAlive, context.channel.isActive {
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
        fail(DownstreamHTTPFailure.unreachable)
    }

    /// Fails what is waiting and closes the connection. Before the answer's head, `unreachable`
    /// stands as given; once an answer has begun, a failure is `brokeOff` unless it says more.
    private func fail(_ failure: any Error) {
        timer?.cancel()
        timer = nil
        let previous = state
        state = .closed
        let begun = (failure as? DownstreamHTTPFailure) == .unreachable ? DownstreamHTTPFailure.brokeOff : failure
        switch previous {
        case .head(let start): start.answer.fail(failure)
        case .whole(let start, _, _): start.answer.fail(begun)
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

    /// After the head: the read timeout again for the next part (if there is one).
    private func rearm(_ id: UInt64, _ readTimeout: TimeAmount?, context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        guard let readTimeout else { return }
        arm(at: .now() + readTimeout, .stalled, for: id, context: context)
    }

    /// A timer for request `id`: one that fires after its request is over (a cancelled timer
    /// already due may still run) does nothing.
    private func arm(at deadline: NIODeadline, _ failure: DownstreamHTTPFailure, for id: UInt64, context: ChannelHandlerContext) {
        timer?.cancel()
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            if handler.value.current == id { handler.value.fail(failure) }
        }
    }

    static func isEventStream(_ head: HTTPResponseHead) -> Bool {
        head.headers.first(name: "Content-Type")?.lowercased().hasPrefix("text/event-stream") == true
    }
}
