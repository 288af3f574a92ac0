import CNATS
import Foundation
import Metrics
import Synchronization

/// Counts one connection's callback contexts that the C client still holds. Tests use it to prove
/// that subscriptions and connections never leak a context: after `close()` it drops to zero.
public final class NATSContextCounter: Sendable {
    private let count = Atomic<Int>(0)

    init() {}

    /// Callback contexts currently retained on behalf of the C client.
    public var live: Int { count.load(ordering: .relaxed) }

    func retain() { count.add(1, ordering: .relaxed) }
    func release() { count.subtract(1, ordering: .relaxed) }
}

/// An object handed to the C client as a callback `closure`. The C client holds exactly one
/// retained reference from `handToC()` until the matching `takeBackFromC(_:)`.
protocol CallbackContext: AnyObject {
    var counter: NATSContextCounter { get }
}

extension CallbackContext {
    func handToC() -> UnsafeMutableRawPointer {
        counter.retain()
        return Unmanaged.passRetained(self).toOpaque()
    }

    /// Ends the C client's reference; the object lives on only if Swift still holds it.
    @discardableResult
    static func takeBackFromC(_ pointer: UnsafeMutableRawPointer) -> Self {
        let context = Unmanaged<Self>.fromOpaque(pointer).takeRetainedValue()
        context.counter.release()
        return context
    }
}

/// The context of one asynchronous subscription. The C client holds one retained reference
/// (`Unmanaged.passRetained`), released in the subscription's on-complete callback, after which
/// the C client never calls the message handler again.
final class SubscriptionContext: CallbackContext, Sendable {
    let continuation: AsyncStream<NATSMessage>.Continuation
    let counter: NATSContextCounter

    init(continuation: AsyncStream<NATSMessage>.Continuation, counter: NATSContextCounter) {
        self.continuation = continuation
        self.counter = counter
    }

    func deliver(_ message: NATSMessage) {
        if case .dropped = continuation.yield(message) {
            // The consumer is too slow: the message is lost (its requester will time out). Alert on this.
            droppedMessages.increment()
        }
    }
}

/// Messages dropped because a subscription's buffer was full (Prometheus: `warden_nats_dropped_messages_total`).
let droppedMessages = Counter(label: "warden_nats_dropped_messages_total")

/// Runs on a nats.c delivery thread: copy the message out, destroy it, hand the copy to Swift.
let subscriptionMessageHandler: natsMsgHandler = { _, _, message, closure in
    guard let message, let closure else { return }
    let context = Unmanaged<SubscriptionContext>.fromOpaque(closure).takeUnretainedValue()
    let copy = NATSMessage(copying: message)
    natsMsg_Destroy(message)
    context.deliver(copy)
}

/// Runs once the C client is done with a subscription: end the stream and give back the context.
let subscriptionCompleteHandler: natsOnCompleteCB = { closure in
    guard let closure else { return }
    SubscriptionContext.takeBackFromC(closure).continuation.finish()
}

extension NATSMessage {
    /// Copies subject, reply, headers and payload out of a C message (which the caller still owns).
    init(copying message: OpaquePointer) {
        let subject = natsMsg_GetSubject(message).map { String(cString: $0) } ?? ""
        let reply = natsMsg_GetReply(message).map { String(cString: $0) }
        let length = Int(natsMsg_GetDataLength(message))
        let payload: Data
        if length > 0, let bytes = natsMsg_GetData(message) {
            payload = Data(bytes: bytes, count: length)
        } else {
            payload = Data()
        }
        var headers: NATSHeaders = [:]
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>? = nil
        var count: Int32 = 0
        if natsMsgHeader_Keys(message, &keys, &count) == NATS_OK, let keys {
            for index in 0..<Int(count) {
                guard let key = keys[index] else { continue }
                var value: UnsafePointer<CChar>? = nil
                if natsMsgHeader_Get(message, key, &value) == NATS_OK, let value {
                    headers[String(cString: key)] = String(cString: value)
                }
            }
            free(UnsafeMutableRawPointer(mutating: keys))
        }
        self.init(subject: subject, replyTo: reply, headers: headers, payload: payload)
    }
}

/// Turns a nats.c status into our error, with the library's text (never a payload).
func natsFailure(_ status: natsStatus, _ operation: String) -> NATSError {
    let text = natsStatus_GetText(status).map { String(cString: $0) } ?? "status \(status.rawValue)"
    switch status {
    case NATS_TIMEOUT: return NATSError(.timeout, "\(operation): \(text)")
    case NATS_NO_RESPONDERS: return NATSError(.noResponders, "\(operation): \(text)")
    case NATS_CONNECTION_CLOSED: return NATSError(.connectionClosed, "\(operation): \(text)")
    case NATS_MAX_PAYLOAD: return NATSError(.payloadTooLarge, "\(operation): \(text)")
    case NATS_INVALID_SUBJECT: return NATSError(.invalidSubject, "\(operation): \(text)")
    case NATS_NOT_FOUND: return NATSError(.keyNotFound, "\(operation): \(text)")
    case NATS_CONNECTION_DISCONNECTED, NATS_NOT_YET_CONNECTED, NATS_NO_SERVER:
        return NATSError(.notConnected, "\(operation): \(text)")
    default: return NATSError(.library, "\(operation): \(text)")
    }
}
