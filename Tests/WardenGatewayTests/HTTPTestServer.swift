import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A real HTTP/1.1 server on a free loopback port (NIO's own server pipeline) whose paths answer as
/// a downstream client's tests need: `/json` echoes the request body as JSON, `/close` answers and
/// closes the connection, `/events` sends an event stream in two parts 100 ms apart, `/events-open`
/// sends one part and keeps the stream open, `/big` sends
/// 10,000 bytes, `/stall` never answers, `/stall-body` sends a head and half a body, then nothing,
/// `/slow-body` sends a head at once and its ten bytes over a second, 100 ms apart, `/bad-header`
/// answers with a header name HTTP does not allow (its headers are not validated), `/events-flood`
/// sends an event stream of 2,000 parts at once, `/error-stall` answers 503 with a head and part of a
/// body, then nothing, `/error-big` answers 500 with 10,000 bytes, `/not-found` answers 404.
/// `/json-then-close` answers as `/json`, then closes the connection 20 ms later without saying so;
/// `/close-header-only` says `Connection: close` and leaves the connection open.
/// It counts the connections it accepted and those that closed, and the requests it read. With a
/// TLS context it speaks HTTPS.
final class HTTPTestServer: Sendable {
    let channel: any Channel
    private let counts: Counts

    final class Counts: Sendable {
        let accepted = Atomic<Int>(0)
        let closed = Atomic<Int>(0)
        let requests = Atomic<Int>(0)
        let open = Mutex<[any Channel]>([])
    }

    var port: Int { channel.localAddress?.port ?? 0 }
    var accepted: Int { counts.accepted.load(ordering: .relaxed) }
    var closed: Int { counts.closed.load(ordering: .relaxed) }
    var requests: Int { counts.requests.load(ordering: .relaxed) }
    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    private init(channel: any Channel, counts: Counts) {
        self.channel = channel
        self.counts = counts
    }

    static func start(tls: NIOSSLContext? = nil) async throws -> HTTPTestServer {
        let counts = Counts()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                counts.accepted.add(1, ordering: .relaxed)
                counts.open.withLock { $0.append(child) }
                child.closeFuture.whenComplete { _ in counts.closed.add(1, ordering: .relaxed) }
                return child.eventLoop.makeCompletedFuture {
                    if let tls { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(withOutboundHeaderValidation: false)
                    try child.pipeline.syncOperations.addHandler(Responder(counts: counts))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return HTTPTestServer(channel: channel, counts: counts)
    }

    /// Stops listening and closes the connections it accepted.
    func stop() async {
        try? await channel.close()
        for child in counts.open.withLock({ $0 }) { try? await child.close() }
    }

    final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private var path = ""
        private var body = ByteBuffer()
        let counts: Counts

        init(counts: Counts) { self.counts = counts }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                counts.requests.add(1, ordering: .relaxed)
                path = head.uri
                body.clear()
            case .body(var part):
                body.writeBuffer(&part)
            case .end:
                answer(context: context)
            }
        }

        private func head(_ context: ChannelHandlerContext, _ headers: [(String, String)], status: HTTPResponseStatus = .ok) {
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(headers)))), promise: nil)
        }

        private func answer(context: ChannelHandlerContext) {
            switch path {
            case "/json":
                head(context, [("Content-Type", "application/json"), ("Content-Length", "\(body.readableBytes)")])
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case "/json-then-close":
                head(context, [("Content-Type", "application/json"), ("Content-Length", "\(body.readableBytes)")])
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                let channel = context.channel
                context.eventLoop.scheduleTask(in: .milliseconds(20)) { channel.close(promise: nil) }
            case "/close-header-only":
                head(context, [("Content-Type", "application/json"), ("Content-Length", "2"), ("Connection", "close")])
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "{}")))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case "/close":
                head(context, [("Content-Type", "application/json"), ("Content-Length", "2"), ("Connection", "close")])
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "{}")))), promise: nil)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            case "/events":
                head(context, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")])
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "data: 1\n\n")))), promise: nil)
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: .milliseconds(100)) {
                    let (responder, context) = bound.value
                    context.write(responder.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "data: 2\n\n")))), promise: nil)
                    context.writeAndFlush(responder.wrapOutboundOut(.end(nil)), promise: nil)
                }
            case "/events-open":
                head(context, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")])
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "data: 1\n\n")))), promise: nil)
            case "/big":
                head(context, [("Content-Type", "application/json"), ("Content-Length", "10000")])
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: UInt8(ascii: "x"), count: 10_000)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case "/events-flood":
                head(context, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")])
                for index in 0..<2_000 { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "data: \(index)\n\n")))), promise: nil) }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case "/bad-header":
                head(context, [("Content-Type", "application/json"), ("Bad Name", "x"), ("Content-Length", "2")])
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "{}")))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case "/slow-body":
                head(context, [("Content-Type", "text/plain"), ("Content-Length", "10")])
                context.flush()
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                for digit in 0..<10 {
                    context.eventLoop.scheduleTask(in: .milliseconds(Int64(digit + 1) * 100)) {
                        let (responder, context) = bound.value
                        guard context.channel.isActive else { return }
                        context.write(responder.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "\(digit)")))), promise: nil)
                        if digit == 9 { context.write(responder.wrapOutboundOut(.end(nil)), promise: nil) }
                        context.flush()
                    }
                }
            case "/error-stall":
                head(context, [("Content-Type", "text/plain"), ("Content-Length", "100")], status: .serviceUnavailable)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "overloaded")))), promise: nil)
            case "/error-big":
                head(context, [("Content-Type", "text/html"), ("Content-Length", "10000")], status: .internalServerError)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: UInt8(ascii: "x"), count: 10_000)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case "/not-found":
                head(context, [("Content-Type", "text/plain"), ("Content-Length", "9")], status: .notFound)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "not found")))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case "/stall-body":
                head(context, [("Content-Type", "application/json"), ("Content-Length", "100")])
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "{\"a\":")))), promise: nil)
            default:  // "/stall"
                break
            }
        }
    }
}
