import CNATS
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A connection to NATS through the C client (libnats), made safe for Swift concurrency.
///
/// - Nothing here blocks a cooperative thread: requests complete through one wildcard reply-inbox
///   subscription and a table of continuations; deadlines are NIO timers; JetStream and key-value
///   management calls (which block inside libnats) run on a small private thread pool.
/// - The connection reconnects forever with jittered backoff. While it is down, calls fail fast with
///   `.notConnected`; for a short window after (re)connecting, "no responders" is retried briefly
///   because peers are re-subscribing.
/// - It is a `Service`: run it in the process's `ServiceGroup` and it closes on graceful shutdown.
public final class NATSConnection: MessageBus, Service, Sendable {
    public struct Configuration: Sendable {
        /// Server URLs, e.g. `nats://127.0.0.1:4222`.
        public var servers: [String]
        /// Shown by the server in its connection list (`<service>/<instance>`).
        public var name: String
        /// The user and password this connection authenticates with (nil: none).
        public var credentials: (user: String, password: String)?
        /// Replies to this connection's requests arrive under `_INBOX.<scope>.` (default: the user,
        /// else none), so that NATS permissions can keep one service's replies from every other:
        /// a service receives on its own inboxes only.
        public var inboxScope: String?
        public var reconnectWait: Duration = .milliseconds(250)
        public var reconnectJitter: Duration = .milliseconds(250)
        public var connectTimeout: Duration = .seconds(2)
        /// How long after (re)connecting "no responders" is retried instead of failing fast.
        public var noRespondersRetryWindow: Duration = .seconds(2)
        /// Timeout of JetStream API calls made by libnats.
        public var jetStreamAPITimeout: Duration = .seconds(5)
        /// Messages buffered per subscription before new ones are dropped (counted in `warden_nats_dropped_messages_total`).
        public var subscriptionBufferLimit: Int = 16_384

        public init(servers: [String], name: String) {
            self.servers = servers
            self.name = name
        }
    }

    public let configuration: Configuration
    let logger: Logger
    nonisolated(unsafe) let connection: OpaquePointer
    nonisolated(unsafe) let jetStreamContext: OpaquePointer
    let inboxPrefix: String
    let pending = PendingRequests()
    /// Callback contexts the C client still holds for this connection (zero once closed).
    public let callbackContexts = NATSContextCounter()
    let events: ConnectionEvents
    let blockingPool: NIOThreadPool
    private let closed = Atomic<Bool>(false)
    let buckets = Mutex<[String: KeyValueHandle]>([:])
    private let replyInbox = Mutex<OpaquePointerBox?>(nil)

    /// Creates the connection and starts connecting in the background; it returns at once even if
    /// the server is not up yet. Throws only for invalid configuration.
    public init(configuration: Configuration, logger: Logger) throws(NATSError) {
        self.configuration = configuration
        self.logger = logger
        self.events = ConnectionEvents(logger: logger, counter: callbackContexts)

        var options: OpaquePointer? = nil
        var status = natsOptions_Create(&options)
        guard status == NATS_OK, let options else { throw natsFailure(status, "create options") }
        defer { natsOptions_Destroy(options) }

        let servers = configuration.servers
        guard !servers.isEmpty else { throw NATSError(.library, "no NATS server URL configured") }
        var cServers = servers.map { strdup($0) }
        defer { cServers.forEach { free($0) } }
        status = cServers.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                natsOptions_SetServers(options, $0, Int32(buffer.count))
            }
        }
        guard status == NATS_OK else { throw natsFailure(status, "server URLs \(servers)") }

        let events = self.events
        let eventsContext = events.handToC()
        var configured = true
        configured = configured && natsOptions_SetName(options, configuration.name) == NATS_OK
        if let credentials = configuration.credentials {
            configured = configured && natsOptions_SetUserInfo(options, credentials.user, credentials.password) == NATS_OK
        }
        let inboxRoot = "_INBOX" + ((configuration.inboxScope ?? configuration.credentials?.user).map { ".\($0)" } ?? "")
        configured = configured && natsOptions_SetCustomInboxPrefix(options, inboxRoot) == NATS_OK
        configured = configured && natsOptions_SetSendAsap(options, true) == NATS_OK
        configured = configured && natsOptions_UseGlobalMessageDelivery(options, true) == NATS_OK
        configured = configured && natsOptions_SetMaxReconnect(options, -1) == NATS_OK
        configured = configured && natsOptions_SetReconnectWait(options, configuration.reconnectWait.milliseconds) == NATS_OK
        configured =
            configured
            && natsOptions_SetReconnectJitter(options, configuration.reconnectJitter.milliseconds, configuration.reconnectJitter.milliseconds)
                == NATS_OK
        configured = configured && natsOptions_SetTimeout(options, configuration.connectTimeout.milliseconds) == NATS_OK
        configured = configured && natsOptions_SetPingInterval(options, 5_000) == NATS_OK
        configured = configured && natsOptions_SetMaxPingsOut(options, 3) == NATS_OK
        // Nothing is buffered while disconnected: calls fail fast instead of replaying stale requests later.
        configured = configured && natsOptions_SetReconnectBufSize(options, 0) == NATS_OK
        configured = configured && natsOptions_SetDisconnectedCB(options, connectionDisconnectedHandler, eventsContext) == NATS_OK
        configured = configured && natsOptions_SetReconnectedCB(options, connectionReconnectedHandler, eventsContext) == NATS_OK
        configured = configured && natsOptions_SetClosedCB(options, connectionClosedHandler, eventsContext) == NATS_OK
        configured = configured && natsOptions_SetRetryOnFailedConnect(options, true, connectionReconnectedHandler, eventsContext) == NATS_OK
        guard configured else {
            ConnectionEvents.takeBackFromC(eventsContext)
            throw NATSError(.library, "could not apply connection options")
        }

        var connection: OpaquePointer? = nil
        status = natsConnection_Connect(&connection, options)
        // With retry-on-failed-connect, "not yet connected" means: connecting in the background.
        guard status == NATS_OK || status == NATS_NOT_YET_CONNECTED, let connection else {
            ConnectionEvents.takeBackFromC(eventsContext)
            throw natsFailure(status, "connect to \(servers.joined(separator: ","))")
        }
        self.connection = connection

        var inbox: UnsafeMutablePointer<natsInbox>? = nil
        natsInbox_Create(&inbox)
        let unique = inbox.map { String(String(cString: $0).dropFirst("_INBOX.".count)) } ?? UUID().uuidString.replacingOccurrences(of: "-", with: "")
        self.inboxPrefix = "\(inboxRoot).\(unique)"
        natsInbox_Destroy(inbox)

        var jsOptions = jsOptions()
        jsOptions_Init(&jsOptions)
        jsOptions.Wait = configuration.jetStreamAPITimeout.milliseconds
        var js: OpaquePointer? = nil
        status = natsConnection_JetStream(&js, connection, &jsOptions)
        guard status == NATS_OK, let js else {
            natsConnection_Close(connection)
            natsConnection_Destroy(connection)
            throw natsFailure(status, "create JetStream context")
        }
        self.jetStreamContext = js

        self.blockingPool = NIOThreadPool(numberOfThreads: 2)
        blockingPool.start()

        events.noteConnectAttempt(connected: status == NATS_OK && natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED)
        try subscribeReplyInbox()
        Self.startDeadlineSweeper(pending)
        logger.debug("NATS connection created", metadata: ["nats.servers": "\(servers.joined(separator: ","))"])
    }

    // MARK: Connection state

    public var isConnected: Bool {
        !closed.load(ordering: .relaxed) && natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED
    }

    public var outages: UInt64 { events.outages }

    /// Waits until connected (polling; for start-up and tests only). Returns false on timeout.
    public func waitUntilConnected(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isConnected { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return isConnected
    }

    // MARK: Publish

    public func publish(_ subject: String, payload: Data, headers: NATSHeaders, replyTo: String?) throws(NATSError) {
        guard !closed.load(ordering: .relaxed) else { throw NATSError(.connectionClosed, "connection closed") }
        guard natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED else {
            throw NATSError(.notConnected, "NATS is not connected")
        }
        if headers.isEmpty {
            // No headers: publish straight from the payload, without building a message object.
            let status = payload.withUnsafeBytes { bytes in
                if let replyTo {
                    natsConnection_PublishRequest(connection, subject, replyTo, bytes.baseAddress, Int32(bytes.count))
                } else {
                    natsConnection_Publish(connection, subject, bytes.baseAddress, Int32(bytes.count))
                }
            }
            guard status == NATS_OK else { throw natsFailure(status, "publish to \(subject)") }
            return
        }
        var message: OpaquePointer? = nil
        var status = payload.withUnsafeBytes { bytes in
            natsMsg_Create(&message, subject, replyTo, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }
        guard status == NATS_OK, let message else { throw natsFailure(status, "publish to \(subject)") }
        defer { natsMsg_Destroy(message) }
        for (name, value) in headers {
            status = natsMsgHeader_Set(message, name, value)
            guard status == NATS_OK else { throw natsFailure(status, "set header \(name)") }
        }
        status = natsConnection_PublishMsg(connection, message)
        guard status == NATS_OK else { throw natsFailure(status, "publish to \(subject)") }
    }

    // MARK: Request/reply

    public func request(_ subject: String, payload: Data, headers: NATSHeaders, timeout: Duration) async throws -> NATSMessage {
        let deadline = ContinuousClock.now + timeout
        var backoff = Duration.milliseconds(10)
        while true {
            do {
                return try await requestOnce(subject, payload: payload, headers: headers, deadline: deadline)
            } catch let error as NATSError where error.code == .noResponders {
                // Right after a (re)connect the responders may still be re-subscribing: retry briefly.
                guard events.isWithin(configuration.noRespondersRetryWindow), deadline - ContinuousClock.now > backoff else { throw error }
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .milliseconds(200))
            }
        }
    }

    private func requestOnce(_ subject: String, payload: Data, headers: NATSHeaders, deadline: ContinuousClock.Instant) async throws -> NATSMessage {
        try Task.checkCancellation()
        let pending = self.pending
        let token = Mutex<UInt64?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<NATSMessage, any Error>) in
                guard let registered = pending.register(continuation, deadline: deadline, subject: subject) else { return }
                token.withLock { $0 = registered }
                if Task.isCancelled {
                    pending.fail(registered, with: CancellationError())
                    return
                }
                do {
                    try publish(subject, payload: payload, headers: headers, replyTo: "\(inboxPrefix).\(registered)")
                } catch {
                    pending.fail(registered, with: error)
                }
            }
        } onCancel: {
            if let registered = token.withLock({ $0 }) { pending.fail(registered, with: CancellationError()) }
        }
    }

    private func subscribeReplyInbox() throws(NATSError) {
        let context = ReplyInboxContext(pending: pending, prefixLength: inboxPrefix.utf8.count + 1, counter: callbackContexts).handToC()
        var subscription: OpaquePointer? = nil
        var status = natsConnection_Subscribe(&subscription, connection, "\(inboxPrefix).*", replyInboxHandler, context)
        guard status == NATS_OK, let subscription else {
            ReplyInboxContext.takeBackFromC(context)
            throw natsFailure(status, "subscribe reply inbox")
        }
        status = natsSubscription_SetOnCompleteCB(subscription, replyInboxCompleteHandler, context)
        if status != NATS_OK {
            logger.warning("could not set completion callback on the reply inbox", metadata: ["nats.status": "\(status.rawValue)"])
        }
        // Destroying the handle would remove interest: keep it until the connection closes.
        replyInbox.withLock { $0 = OpaquePointerBox(subscription) }
    }

    // MARK: Subscribe

    public func subscribe(_ subject: String, queue: String?) throws(NATSError) -> NATSSubscription {
        guard NATSSubject.isValidSubscribeSubject(subject) else { throw NATSError(.invalidSubject, "invalid subject '\(subject)'") }
        guard !closed.load(ordering: .relaxed) else { throw NATSError(.connectionClosed, "connection closed") }
        let (stream, continuation) = AsyncStream.makeStream(
            of: NATSMessage.self, bufferingPolicy: .bufferingOldest(configuration.subscriptionBufferLimit))
        let context = SubscriptionContext(continuation: continuation, counter: callbackContexts).handToC()
        var subscription: OpaquePointer? = nil
        var status: natsStatus
        if let queue {
            status = natsConnection_QueueSubscribe(&subscription, connection, subject, queue, subscriptionMessageHandler, context)
        } else {
            status = natsConnection_Subscribe(&subscription, connection, subject, subscriptionMessageHandler, context)
        }
        guard status == NATS_OK, let subscription else {
            SubscriptionContext.takeBackFromC(context)
            continuation.finish()
            throw natsFailure(status, "subscribe to \(subject)")
        }
        status = natsSubscription_SetOnCompleteCB(subscription, subscriptionCompleteHandler, context)
        guard status == NATS_OK else {
            // Without the completion callback we cannot know when the context is free: tear down now.
            natsSubscription_Unsubscribe(subscription)
            natsSubscription_Destroy(subscription)
            continuation.finish()
            throw natsFailure(status, "subscribe to \(subject)")
        }
        let handle = SubscriptionHandle(subscription)
        return NATSSubscription(subject: subject, queue: queue, stream: stream) { handle.close() }
    }

    // MARK: Lifecycle

    public func run() async throws {
        try? await gracefulShutdown()
        close()
    }

    /// Closes the connection: pending requests fail with `.connectionClosed`, subscriptions end. Idempotent.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        events.closing.store(true, ordering: .relaxed)
        pending.failAll(with: NATSError(.connectionClosed, "connection closed"))
        // Let blocking JetStream/KV calls finish first (later ones are refused). The C objects are
        // freed only in deinit: freeing them here was a use-after-free when a call raced close().
        try? blockingPool.syncShutdownGracefully()
        natsConnection_Close(connection)
        if let inbox = replyInbox.withLock({ value -> OpaquePointerBox? in
            defer { value = nil }; return value
        }) {
            natsSubscription_Destroy(inbox.pointer)
        }
        logger.debug("NATS connection closed")
    }

    /// One thread per connection fails requests whose deadline passed (5 ms resolution). It ends
    /// when the connection closes.
    private static func startDeadlineSweeper(_ pending: PendingRequests) {
        let thread = Thread {
            while !pending.isClosed {
                usleep(5_000)
                pending.expire(now: .now)
            }
        }
        thread.name = "warden-nats-deadlines"
        thread.start()
    }

    /// The C objects are freed only here, when no Swift code can reach this connection any more: a
    /// `publish` racing `close()` then meets a closed connection (an error), never freed memory.
    deinit {
        close()
        buckets.withLock { buckets in
            for handle in buckets.values { handle.destroy() }
            buckets.removeAll()
        }
        jsCtx_Destroy(jetStreamContext)
        natsConnection_Destroy(connection)
    }

    /// Runs a libnats call that blocks (JetStream/KV management) on the private thread pool.
    func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        guard !closed.load(ordering: .relaxed) else { throw NATSError(.connectionClosed, "connection closed") }
        return try await blockingPool.runIfActive(body)
    }
}

/// Owns a C subscription handle; closing it unsubscribes once.
final class SubscriptionHandle: Sendable {
    private let handle: Mutex<OpaquePointerBox?>

    init(_ pointer: OpaquePointer) {
        handle = Mutex(OpaquePointerBox(pointer))
    }

    func close() {
        guard
            let box = handle.withLock({ value -> OpaquePointerBox? in
                defer { value = nil }; return value
            })
        else { return }
        natsSubscription_Unsubscribe(box.pointer)
        natsSubscription_Destroy(box.pointer)
    }

    deinit {
        // A subscription dropped without `unsubscribe()` keeps delivering until the connection closes;
        // the C client still releases the context then.
        if let box = handle.withLock({ $0 }) { natsSubscription_Destroy(box.pointer) }
    }
}

struct OpaquePointerBox: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

// MARK: Reply inbox

final class ReplyInboxContext: CallbackContext, Sendable {
    let pending: PendingRequests
    let prefixLength: Int
    let counter: NATSContextCounter

    init(pending: PendingRequests, prefixLength: Int, counter: NATSContextCounter) {
        self.pending = pending
        self.prefixLength = prefixLength
        self.counter = counter
    }
}

private let replyInboxHandler: natsMsgHandler = { _, _, message, closure in
    guard let message, let closure else { return }
    let context = Unmanaged<ReplyInboxContext>.fromOpaque(closure).takeUnretainedValue()
    defer { natsMsg_Destroy(message) }
    guard let subject = natsMsg_GetSubject(message) else { return }
    // The token is the decimal number after "<inbox prefix>.".
    var token: UInt64 = 0
    var index = context.prefixLength
    while subject[index] != 0 {
        let digit = UInt8(bitPattern: subject[index]) &- UInt8(ascii: "0")
        guard digit < 10 else { return }
        token = token &* 10 &+ UInt64(digit)
        index += 1
    }
    guard index > context.prefixLength else { return }
    if natsMsg_IsNoResponders(message) {
        context.pending.fail(token, with: NATSError(.noResponders, "no service is listening"))
    } else {
        context.pending.succeed(token, with: NATSMessage(copying: message))
    }
}

private let replyInboxCompleteHandler: natsOnCompleteCB = { closure in
    guard let closure else { return }
    ReplyInboxContext.takeBackFromC(closure)
}

// MARK: Connection events

/// Connection state seen through libnats callbacks (which run on its threads): logs, and the time of
/// the last (re)connect for the "no responders" retry window.
final class ConnectionEvents: CallbackContext, Sendable {
    let logger: Logger
    private let lastConnected = Mutex<ContinuousClock.Instant?>(nil)
    private let disconnectedOnce = Atomic<Bool>(false)
    private let disconnections = Atomic<UInt64>(0)
    /// Set by `close()`: the disconnect that follows is ours, not an outage.
    let closing = Atomic<Bool>(false)

    let counter: NATSContextCounter

    init(logger: Logger, counter: NATSContextCounter) {
        self.logger = logger
        self.counter = counter

    }

    func noteConnectAttempt(connected: Bool) {
        if connected { lastConnected.withLock { $0 = .now } }
    }

    func connected() {
        lastConnected.withLock { $0 = .now }
        let again = disconnectedOnce.load(ordering: .relaxed)
        if again { Counter(label: "warden_nats_reconnects_total").increment() }
        logger.info(again ? "NATS reconnected" : "NATS connected")
    }

    var outages: UInt64 { disconnections.load(ordering: .acquiring) }

    func disconnected() {
        disconnections.add(1, ordering: .releasing)
        guard !closing.load(ordering: .relaxed) else { return }
        disconnectedOnce.store(true, ordering: .relaxed)
        logger.warning("NATS disconnected; reconnecting")
    }

    func isWithin(_ window: Duration) -> Bool {
        guard let last = lastConnected.withLock({ $0 }) else { return false }
        return ContinuousClock.now - last < window
    }
}

private let connectionDisconnectedHandler: natsConnectionHandler = { _, closure in
    guard let closure else { return }
    Unmanaged<ConnectionEvents>.fromOpaque(closure).takeUnretainedValue().disconnected()
}

private let connectionReconnectedHandler: natsConnectionHandler = { _, closure in
    guard let closure else { return }
    Unmanaged<ConnectionEvents>.fromOpaque(closure).takeUnretainedValue().connected()
}

private let connectionClosedHandler: natsConnectionHandler = { _, closure in
    guard let closure else { return }
    ConnectionEvents.takeBackFromC(closure)
}

extension Duration {
    /// Whole milliseconds, for libnats options.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }

    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
