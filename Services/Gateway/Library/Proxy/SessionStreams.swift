import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenMCP
import WardenNATS

/// The standing GET streams this replica holds, by session: where server-to-client messages that
/// belong to no request go (`list_changed`). Local by design: each replica notifies the streams it
/// holds when its own view of a server changes. A session ended anywhere closes its streams here
/// too (broadcast over NATS, see `GatewayBroadcasts`).
public final class SessionStreams: Sendable {
    private struct State {
        var next = 0
        var streams: [Int: (session: String, agent: String?, org: String?, continuation: AsyncStream<JSONRPCMessage>.Continuation)] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// A new stream for `session`; it ends when the session ends or `close` is called with its number.
    func open(session: String, agent: String? = nil, org: String? = nil) -> (number: Int, messages: AsyncStream<JSONRPCMessage>) {
        let (messages, continuation) = AsyncStream.makeStream(of: JSONRPCMessage.self, bufferingPolicy: .bufferingNewest(256))
        let number = state.withLock { state -> Int in
            state.next += 1
            state.streams[state.next] = (session, agent, org, continuation)
            return state.next
        }
        return (number, messages)
    }

    func close(_ number: Int) {
        state.withLock { $0.streams.removeValue(forKey: number) }?.continuation.finish()
    }

    /// Sends a message to every stream this replica holds, or only to `org`'s (news of an org's own
    /// server is not shown to other orgs).
    func broadcast(_ message: JSONRPCMessage, org: String? = nil) {
        for stream in state.withLock({ Array($0.streams.values) }) where org == nil || stream.org == org { stream.continuation.yield(message) }
    }

    /// Sends a message to the streams of one session held here; false when there are none.
    @discardableResult
    func send(_ message: JSONRPCMessage, to session: String) -> Bool {
        let matching = state.withLock { $0.streams.values.filter { $0.session == session }.map(\.continuation) }
        for continuation in matching { continuation.yield(message) }
        return !matching.isEmpty
    }

    /// Ends every stream of `session`.
    func endSession(_ session: String) {
        let ended = state.withLock { state -> [AsyncStream<JSONRPCMessage>.Continuation] in
            let matching = state.streams.filter { $0.value.session == session }
            for key in matching.keys { state.streams[key] = nil }
            return matching.values.map(\.continuation)
        }
        for continuation in ended { continuation.finish() }
    }

    /// Ends every stream an agent holds here (its tokens were revoked).
    func endAgent(_ agent: String) {
        let ended = state.withLock { state -> [AsyncStream<JSONRPCMessage>.Continuation] in
            let matching = state.streams.filter { $0.value.agent == agent }
            for key in matching.keys { state.streams[key] = nil }
            return matching.values.map(\.continuation)
        }
        for continuation in ended { continuation.finish() }
    }

    var count: Int { state.withLock { $0.streams.count } }
}

/// What every gateway replica must hear: a client cancelled a request (which may run on another
/// replica), a session ended (its streams everywhere close). Plain NATS publish/subscribe, no queue
/// group: every replica gets every message and acts on what it holds.
public final class GatewayBroadcasts: Service, Sendable {
    static let cancelSubject = "warden.gateway.broadcast.cancel"
    static let sessionEndedSubject = "warden.gateway.broadcast.session-ended"
    static let answerSubject = "warden.gateway.broadcast.answer"
    static let sessionMessageSubject = "warden.gateway.broadcast.session-message"
    /// Marks what this replica published, so it does not deliver its own messages twice.
    static let originHeader = "Warden-Origin"
    let origin: String = {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next() as UInt64, radix: 36)
    }()

    struct Cancel: Codable {
        var session: String?
        var id: String
        var idIsNumber: Bool
    }

    let bus: NATSConnection
    let calls: InFlightCalls
    let streams: SessionStreams
    let relay: ServerRequestRelay
    let subscriptions: ResourceSubscriptions
    let logger: Logger

    public init(bus: NATSConnection, calls: InFlightCalls, streams: SessionStreams, relay: ServerRequestRelay, subscriptions: ResourceSubscriptions, logger: Logger) {
        self.bus = bus
        self.calls = calls
        self.streams = streams
        self.relay = relay
        self.subscriptions = subscriptions
        self.logger = logger
    }

    /// A message for a session's standing stream, wherever that stream is open (streams are not
    /// resumable: a stream opened later does not get it).
    func send(_ message: JSONRPCMessage, to session: String) {
        streams.send(message, to: session)
        var payload = Data(session.utf8)
        payload.append(0x0A)
        payload.append(contentsOf: message.json.serialized())
        try? bus.publish(Self.sessionMessageSubject, payload: payload, headers: [Self.originHeader: origin])
    }

    /// A client's answer to a server's request: delivered here if this replica asked, else relayed.
    func answer(session: String, id: JSONRPCID, _ message: JSONRPCMessage) {
        guard case .string(let text) = id else { return }
        if relay.deliver(id: text, session: session, message) { return }
        var payload = Data(session.utf8)
        payload.append(0x0A)
        payload.append(contentsOf: message.json.serialized())
        try? bus.publish(Self.answerSubject, payload: payload)
    }

    /// Cancels the request here if it runs here, and tells the other replicas.
    func cancel(_ key: InFlightCalls.RequestKey) {
        if calls.cancel(key) { return }
        let body: Cancel
        switch key.id {
        case .number(let literal): body = Cancel(session: key.session, id: literal, idIsNumber: true)
        case .string(let text): body = Cancel(session: key.session, id: text, idIsNumber: false)
        }
        guard let payload = try? JSONEncoder().encode(body) else { return }
        try? bus.publish(Self.cancelSubject, payload: payload)
    }

    func sessionEnded(_ session: String) {
        streams.endSession(session)
        subscriptions.removeAll(session: session)
        try? bus.publish(Self.sessionEndedSubject, payload: Data(session.utf8))
    }

    public func run() async throws {
        let subscription = try bus.subscribe("warden.gateway.broadcast.>", queue: nil)
        await cancelWhenGracefulShutdown {
            for await message in subscription {
                switch message.subject {
                case Self.cancelSubject:
                    guard let cancel = try? JSONDecoder().decode(Cancel.self, from: message.payload) else { continue }
                    self.calls.cancel(InFlightCalls.RequestKey(session: cancel.session, id: cancel.idIsNumber ? .number(cancel.id) : .string(cancel.id)))
                case Self.answerSubject:
                    guard let cut = message.payload.firstIndex(of: 0x0A) else { continue }
                    let session = String(decoding: message.payload[..<cut], as: UTF8.self)
                    guard let answer = try? JSONRPCMessage.parse(JSONParser().parse(message.payload[(cut + 1)...])),
                        case .string(let id)? = answer.id, self.relay.isOurs(id)
                    else { continue }
                    self.relay.deliver(id: id, session: session, answer)
                case Self.sessionMessageSubject where message.headers[Self.originHeader] != self.origin:
                    guard let cut = message.payload.firstIndex(of: 0x0A),
                        let forwarded = try? JSONRPCMessage.parse(JSONParser().parse(message.payload[(cut + 1)...]))
                    else { continue }
                    self.streams.send(forwarded, to: String(decoding: message.payload[..<cut], as: UTF8.self))
                case Self.sessionEndedSubject:
                    let session = String(decoding: message.payload, as: UTF8.self)
                    self.streams.endSession(session)
                    self.subscriptions.removeAll(session: session)
                default:
                    break
                }
            }
        }
        subscription.unsubscribe()
    }
}

/// Which sessions subscribed to which resource, per replica: a subscription is forwarded to this
/// replica's instance of the server, whose `notifications/resources/updated` therefore arrives here.
public final class ResourceSubscriptions: Sendable {
    private let table = Mutex<[String: Set<String>]>([:])

    public init() {}

    static func key(server: String, uri: String) -> String { server + "\u{0}" + uri }

    func add(session: String, server: String, uri: String) {
        _ = table.withLock { $0[Self.key(server: server, uri: uri), default: []].insert(session) }
    }

    func remove(session: String, server: String, uri: String) {
        table.withLock { table in
            let key = Self.key(server: server, uri: uri)
            table[key]?.remove(session)
            if table[key]?.isEmpty == true { table[key] = nil }
        }
    }

    func removeAll(session: String) {
        table.withLock { table in
            for key in table.keys {
                table[key]?.remove(session)
                if table[key]?.isEmpty == true { table[key] = nil }
            }
        }
    }

    func sessions(server: String, uri: String) -> Set<String> {
        table.withLock { $0[Self.key(server: server, uri: uri)] ?? [] }
    }
}
