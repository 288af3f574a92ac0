import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenMCP
import WardenNATS

/// What every gateway replica must hear: a client cancelled a request (which may run on another
/// replica), a session ended (its streams everywhere close). Plain NATS publish/subscribe, no queue
/// group: every replica gets every message and acts on what it holds.
package final class GatewayBroadcasts: Service, ClientMessageSink, Sendable {
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

    package init(
        bus: NATSConnection, calls: InFlightCalls, streams: SessionStreams, relay: ServerRequestRelay, subscriptions: ResourceSubscriptions,
        logger: Logger
    ) {
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

    package func run() async throws {
        let subscription = try bus.subscribe("warden.gateway.broadcast.>", queue: nil)
        await cancelWhenGracefulShutdown {
            for await message in subscription {
                switch message.subject {
                case Self.cancelSubject:
                    guard let cancel = try? JSONDecoder().decode(Cancel.self, from: message.payload) else { continue }
                    self.calls.cancel(
                        InFlightCalls.RequestKey(session: cancel.session, id: cancel.idIsNumber ? .number(cancel.id) : .string(cancel.id)))
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
