import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The HTTP/1.1 client of one Streamable HTTP server's connection: keep-alive connections used one
/// request at a time, each answer read on its connection's event loop and handed to the caller once
/// — whole, unless it is an event stream, whose body parts are handed over as they come, or not a
/// success (not 2xx), which is handed over at its head, its body unread and its connection closed. It
/// replaced async-http-client on this path, which took 1.7 times the instructions and 2.1 times the
/// CPU a request (`WARDEN_BENCH_ONLY=downstream-client`, `BENCHMARKS.md`): no task, actor hop or
/// async sequence a request, one hand-over back to the caller.
///
/// It follows no redirects, adds only `Host` (unless given) and `Content-Length` to what it is
/// given, verifies TLS certificates and host names against the system's roots, and reuses a
/// connection only after an answer ended on it cleanly, the whole request was written and the server
/// did not ask to close it, or when nothing of a request was written (its caller gave up, or its
/// deadline passed, before it began); anything else (a failure, a timeout, a caller that gave up
/// while it ran, an answer cut short, an event stream its reader dropped) closes the connection.
/// At most `maximumConnections` are open at once (`DownstreamConnectionPool`); a request beyond
/// waits, within its deadline, for one to be kept or closed.
package final class DownstreamHTTPClient: Sendable {
    /// An answer: whole (up to the request's limit), an event stream's body as it arrives, or, not a
    /// success, its head with an empty body.
    package struct Response: Sendable {
        package var status: HTTPResponseStatus
        package var headers: HTTPHeaders
        package var body: Body
    }

    package enum Body: Sendable {
        case whole(ByteBuffer)
        /// Fails with `DownstreamHTTPFailure` (`.stalled`, `.brokeOff`, `.overrun`) or `CancellationError`.
        case events(AsyncThrowingStream<ByteBuffer, any Error>)
    }

    /// A connection kept for the next request, and where it goes.
    struct Connection: Sendable {
        let channel: any Channel
        /// Its handler, which requests are handed to on the connection's event loop.
        let exchange: NIOLoopBound<DownstreamHTTPExchange>
        let target: DownstreamHTTPTarget
        /// When it was made or last answered (a connection idle for long may have been dropped by a
        /// NAT or load balancer without a word: not used again).
        var since: NIODeadline
    }

    /// How long an answer may go without a byte once its head arrived (nil: for ever).
    let readTimeout: TimeAmount?
    /// What https connections trust: the system's roots (tests add their own).
    let tls: Result<NIOSSLContext, DownstreamHTTPFailure>
    private let state: Mutex<State>
    /// Connections open at once by default (async-http-client's limit a host, which this client replaced).
    static let maximumConnections = 32
    /// Connections kept idle at most; more are closed when their answer ends.
    static let maximumIdle = 32
    static let connectTimeout = TimeAmount.seconds(3)
    /// How long a connection is kept unused at most (as async-http-client kept them).
    static let maximumIdleTime = TimeAmount.seconds(60)
    /// Requests made in this process: each one's id.
    private static let requests = Atomic<UInt64>(0)

    package convenience init(readTimeout: TimeAmount?, maximumConnections: Int = maximumConnections) {
        self.init(readTimeout: readTimeout, tls: Self.systemTLS, maximumConnections: maximumConnections)
    }

    /// A client whose https connections trust what `tls` says (tests: a certificate of their own).
    convenience init(readTimeout: TimeAmount?, tls: TLSConfiguration) throws {
        self.init(readTimeout: readTimeout, tls: .success(try NIOSSLContext(configuration: tls)), maximumConnections: Self.maximumConnections)
    }

    private init(readTimeout: TimeAmount?, tls: Result<NIOSSLContext, DownstreamHTTPFailure>, maximumConnections: Int) {
        self.readTimeout = readTimeout
        self.tls = tls
        state = Mutex(State(pool: DownstreamConnectionPool(maximum: maximumConnections, maximumIdle: Self.maximumIdle)))
    }

    private typealias Grant = DownstreamConnectionPool<Connection>.Grant
    private typealias Waiting = CheckedContinuation<Grant, any Error>

    private struct State {
        var pool: DownstreamConnectionPool<Connection>
        /// Requests waiting for a connection: suspended, or settled (handed what they wait for, or
        /// failed) before they suspended.
        var waiters: [UInt64: Waiter] = [:]

        /// Settles a waiting request: the continuation to resume with `outcome`, if it has
        /// suspended; otherwise the outcome waits for it.
        mutating func settle(_ request: UInt64, _ outcome: Result<Grant, any Error>) -> Waiting? {
            if case .suspended(let continuation)? = waiters.removeValue(forKey: request) { return continuation }
            waiters[request] = .settled(outcome)
            return nil
        }

        /// Hands a grant to its waiting request: the continuation to resume, if it has suspended.
        mutating func deliver(_ handover: DownstreamConnectionPool<Connection>.Handover) -> (Waiting, Grant)? {
            guard case .grant(let request, let grant) = handover else { return nil }
            return settle(request, .success(grant)).map { ($0, grant) }
        }
    }

    private enum Waiter {
        case suspended(Waiting)
        /// Handed a grant, or given up (cancelled, its deadline passed, the client shut down),
        /// before it suspended.
        case settled(Result<Grant, any Error>)
    }

    deinit {
        for connection in state.withLock({ $0.pool.idle }) { connection.channel.close(promise: nil) }
    }

    /// Sends one request and waits for its answer's head (until `deadline`), then, for a success
    /// (2xx) that is not an event stream, for its whole body (at most `maximumBodyBytes`, each part
    /// within the read timeout). Throws `DownstreamHTTPFailure` or `CancellationError`.
    /// `beyondLimit`: never waits for a connection (`DownstreamConnectionPool`).
    package func execute(
        _ method: HTTPMethod, _ target: DownstreamHTTPTarget, headers: HTTPHeaders, body: ByteBuffer?, deadline: NIODeadline, maximumBodyBytes: Int,
        beyondLimit: Bool = false
    ) async throws -> Response {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target.path, headers: headers)
        if !head.headers.contains(name: "Host") { head.headers.add(name: "Host", value: target.authority) }
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        do {
            return try await send(
                head, body, on: try await connection(to: target, deadline: deadline, beyondLimit: beyondLimit), deadline, maximumBodyBytes)
        } catch DownstreamHTTPFailure.notSent {
            // The connection closed before the request went out on it (the server dropped an idle
            // connection just then, say): nothing was sent, so a new connection may carry it —
            // unless its caller has given up meanwhile.
            try Task.checkCancellation()
            do {
                return try await send(
                    head, body, on: try await connection(to: target, deadline: deadline, retry: true, beyondLimit: beyondLimit), deadline,
                    maximumBodyBytes)
            } catch DownstreamHTTPFailure.notSent {
                throw DownstreamHTTPFailure.unreachable
            }
        }
    }

    private func send(
        _ head: HTTPRequestHead, _ body: ByteBuffer?, on connection: Connection, _ deadline: NIODeadline, _ maximumBodyBytes: Int
    ) async throws -> Response {
        let (loop, exchange) = (connection.channel.eventLoop, connection.exchange)
        let id = Self.requests.add(1, ordering: .relaxed).newValue
        let ended: @Sendable () -> Void = { [weak self] in
            if let self { self.keep(connection) } else { connection.channel.close(promise: nil) }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { answer in
                let start = DownstreamHTTPExchange.Start(
                    id: id, head: head, body: body, deadline: deadline, readTimeout: readTimeout, maximumBodyBytes: maximumBodyBytes,
                    answer: answer, ended: ended)
                loop.execute { exchange.value.begin(start) }
            }
        } onCancel: {
            // Queued behind the request's start, unless the caller had given up before it was
            // queued (while a connection was found, say): the exchange then never begins it.
            loop.execute { exchange.value.abandon(id) }
        }
    }

    /// Closes the connections kept idle (those in use close when their answers end) and fails the
    /// requests waiting for one as `unreachable`.
    package func shutdown() {
        let (connections, waiting) = state.withLock { state in
            let (connections, waiting) = state.pool.shutDown()
            return (connections, waiting.compactMap { state.settle($0, .failure(DownstreamHTTPFailure.unreachable)) })
        }
        for connection in connections { connection.channel.close(promise: nil) }
        for continuation in waiting { continuation.resume(throwing: DownstreamHTTPFailure.unreachable) }
    }

    /// An idle connection to `target` that is still open and was used within `maximumIdleTime`, or
    /// a new one (`retry`: a new one), waiting for one to be kept or closed while `maximumConnections`
    /// are open (unless `beyondLimit`).
    private func connection(to target: DownstreamHTTPTarget, deadline: NIODeadline, retry: Bool = false, beyondLimit: Bool = false) async throws
        -> Connection
    {
        let request = Self.requests.add(1, ordering: .relaxed).newValue
        let now = NIODeadline.now()
        let (acquired, expired) = state.withLock { state in
            state.pool.acquire(request, retry: retry, beyondLimit: beyondLimit) { kept in
                kept.target.sameServer(as: target) && kept.channel.isActive && now - kept.since < Self.maximumIdleTime
            }
        }
        for connection in expired { connection.channel.close(promise: nil) }
        let grant: Grant
        switch acquired {
        case .granted(let granted): grant = granted
        case .wait: grant = try await wait(request, deadline: deadline)
        }
        guard case .use(let connection) = grant else { return try await connectInPlace(to: target, deadline: deadline) }
        // One handed over by another request may have closed meanwhile, or go to another server (the URL changed).
        guard case .wait = acquired, !connection.target.sameServer(as: target) || !connection.channel.isActive else { return connection }
        // Its place comes back once it has closed.
        connection.channel.close(promise: nil)
        return try await self.connection(to: target, deadline: deadline, retry: true, beyondLimit: beyondLimit)
    }

    /// Waits, until `deadline`, for a connection or a place to make one.
    private func wait(_ request: UInt64, deadline: NIODeadline) async throws -> Grant {
        let timer = MultiThreadedEventLoopGroup.singleton.next().scheduleTask(deadline: deadline) { [weak self] in
            self?.giveUp(request, DownstreamHTTPFailure.noAnswer)
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<Grant, any Error>? in
                    switch state.waiters.removeValue(forKey: request) {
                    case .settled(let outcome)?: return outcome
                    case .suspended?, nil:
                        state.waiters[request] = .suspended(continuation)
                        return nil
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            giveUp(request, CancellationError())
        }
    }

    /// A waiting request gives up, unless it was handed something already (it then uses it).
    private func giveUp(_ request: UInt64, _ error: any Error) {
        let continuation = state.withLock { state in state.pool.abandon(request) ? state.settle(request, .failure(error)) : nil }
        continuation?.resume(throwing: error)
    }

    /// A connection closed, or one could not be made: its place goes to a waiting request.
    private func release() {
        if let (continuation, grant) = state.withLock({ $0.deliver($0.pool.released()) }) { continuation.resume(returning: grant) }
    }

    /// Makes a connection in the place it was given: the place comes back if that fails.
    private func connectInPlace(to target: DownstreamHTTPTarget, deadline: NIODeadline) async throws -> Connection {
        do {
            return try await connect(to: target, deadline: deadline)
        } catch {
            release()
            throw error
        }
    }

    private func connect(to target: DownstreamHTTPTarget, deadline: NIODeadline) async throws -> Connection {
        let remaining = deadline - .now()
        guard remaining > .zero else { throw DownstreamHTTPFailure.noAnswer }
        let tls = target.secure ? try self.tls.get() : nil
        let connectTimeout = min(Self.connectTimeout, remaining)
        do {
            let (channel, exchange) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: target.host, port: target.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: tls, serverHostname: target.isIPAddress ? nil : target.host))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        let exchange = DownstreamHTTPExchange()
                        try channel.pipeline.syncOperations.addHandler(exchange)
                        return (channel, NIOLoopBound(exchange, eventLoop: channel.eventLoop))
                    }
                }
            // Its place is given back when it closes, however it closes.
            channel.closeFuture.whenComplete { [weak self] _ in self?.release() }
            return Connection(channel: channel, exchange: exchange, target: target, since: .now())
        } catch ChannelError.connectTimeout where connectTimeout < Self.connectTimeout {
            // Cut short by the request's deadline, not the server's fault: a timeout, as before.
            throw DownstreamHTTPFailure.noAnswer
        } catch {
            throw DownstreamHTTPFailure.unreachable
        }
    }

    /// Hands a connection whose answer ended cleanly to a waiting request, or keeps it for the next
    /// one. Connections idle for longer than `maximumIdleTime` are closed on the way.
    private func keep(_ connection: Connection) {
        var connection = connection
        let now = NIODeadline.now()
        connection.since = now
        let (handover, close) = state.withLock { state in
            let (handover, close) = state.pool.kept(connection) { now - $0.since >= Self.maximumIdleTime }
            return (state.deliver(handover), close)
        }
        for connection in close { connection.channel.close(promise: nil) }
        if let (continuation, grant) = handover { continuation.resume(returning: grant) }
    }

    /// Made once (it reads the system's trust roots): certificates and host names verified.
    static let systemTLS: Result<NIOSSLContext, DownstreamHTTPFailure> = {
        do { return .success(try NIOSSLContext(configuration: .makeClientConfiguration())) } catch { return .failure(.unreachable) }
    }()
}
