import CNATS
import Foundation
import WardenMCP

/// A JetStream stream to create or update at start-up.
public struct JetStreamStreamSpec: Sendable, Equatable {
    public var name: String
    public var subjects: [String]
    /// Messages older than this are removed (nil: kept until other limits apply).
    public var maxAge: Duration?
    public var maxBytes: Int64?
    /// Window in which a repeated `Nats-Msg-Id` is dropped as a duplicate.
    public var duplicateWindow: Duration = .seconds(120)
    /// Keep messages on disk (true) or in memory.
    public var fileStorage: Bool = true

    public init(name: String, subjects: [String], maxAge: Duration? = nil, maxBytes: Int64? = nil) {
        self.name = name
        self.subjects = subjects
        self.maxAge = maxAge
        self.maxBytes = maxBytes
    }
}

/// A durable push consumer whose messages are shared by every replica in `deliverGroup`.
public struct JetStreamConsumerSpec: Sendable, Equatable {
    public var stream: String
    public var durableName: String
    public var filterSubject: String?
    /// Replicas that share the work name the same group.
    public var deliverGroup: String
    /// How long the server waits for an ack before redelivering.
    public var ackWait: Duration = .seconds(30)
    /// Deliveries before the server gives up on a message (-1: never).
    public var maxDeliver: Int = -1
    public var maxAckPending: Int = 1_000

    public init(stream: String, durableName: String, filterSubject: String? = nil, deliverGroup: String) {
        self.stream = stream
        self.durableName = durableName
        self.filterSubject = filterSubject
        self.deliverGroup = deliverGroup
    }

    /// The push subject the server delivers to; fixed (not an inbox) so that every replica binds to it.
    public var deliverSubject: String { "warden.deliver.\(stream).\(durableName)" }
}

/// The server's acknowledgement of a JetStream publish.
public struct JetStreamPublishAck: Sendable, Equatable {
    public var stream: String
    public var sequence: UInt64
    /// True when the server dropped the message as a duplicate of an earlier `Nats-Msg-Id`.
    public var duplicate: Bool

    public init(stream: String, sequence: UInt64, duplicate: Bool = false) {
        self.stream = stream
        self.sequence = sequence
        self.duplicate = duplicate
    }

    /// The ack in a publish's reply (`{"stream":…,"seq":…}`, `"duplicate":true` for a repeated
    /// message id), nil for anything else. An API error is never an ack, even where the server
    /// names the stream (and sequence 0) beside it, as it does when the stream fails to store the
    /// message. Read with `JSONParser`: Foundation's `JSONDecoder` cost about 32,000 instructions an
    /// ack, and the gateway waits for one every batch of audit events it publishes (callgrind,
    /// `BENCHMARKS.md`).
    public init?(reply payload: Data) {
        guard let reply = try? JSONParser().parse(payload), reply["error"] == nil, case .string(let stream)? = reply["stream"],
            case .number(let digits)? = reply["seq"], let sequence = UInt64(digits)
        else { return nil }
        switch reply["duplicate"] {
        case nil, .null?: self.init(stream: stream, sequence: sequence)
        case .bool(let duplicate)?: self.init(stream: stream, sequence: sequence, duplicate: duplicate)
        default: return nil
        }
    }
}

/// What a durable consumer has not finished: delivered and not acknowledged, not yet delivered,
/// and delivered more than once.
public struct JetStreamConsumerState: Sendable, Equatable, Decodable {
    public var ackPending: Int
    public var pending: Int
    public var redelivered: Int

    enum CodingKeys: String, CodingKey { case ackPending = "num_ack_pending", pending = "num_pending", redelivered = "num_redelivered" }

    public init(ackPending: Int, pending: Int, redelivered: Int) {
        self.ackPending = ackPending
        self.pending = pending
        self.redelivered = redelivered
    }
}

/// A message delivered by a durable consumer; acknowledge it once it is safely handled.
public struct JetStreamMessage: Sendable {
    public var message: NATSMessage
    /// The stream sequence, from the ack subject's metadata.
    public var streamSequence: UInt64
    /// 1 on first delivery, more on redeliveries.
    public var deliveryCount: UInt64

    /// Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`
    /// (and the newer form with domain and account hash in front).
    public init?(_ message: NATSMessage) {
        guard let reply = message.replyTo, reply.hasPrefix("$JS.ACK.") else { return nil }
        let tokens = reply.split(separator: ".")
        let offset: Int
        switch tokens.count {
        case 9: offset = 0
        case 11, 12: offset = 2
        default: return nil
        }
        guard let delivered = UInt64(tokens[4 + offset]), let sequence = UInt64(tokens[5 + offset]) else { return nil }
        self.message = message
        self.streamSequence = sequence
        self.deliveryCount = delivered
    }
}

extension NATSConnection {
    /// Creates the stream, or updates it to this configuration if it exists.
    public func ensureStream(_ spec: JetStreamStreamSpec) async throws {
        let js = OpaquePointerBox(jetStreamContext)
        try await runBlocking {
            var config = jsStreamConfig()
            jsStreamConfig_Init(&config)
            var status: natsStatus = NATS_OK
            var errorCode = jsErrCode(0)
            let name = strdup(spec.name)
            var subjects = spec.subjects.map { UnsafePointer(strdup($0)) }
            defer {
                free(name)
                subjects.forEach { free(UnsafeMutablePointer(mutating: $0)) }
            }
            config.Name = UnsafePointer(name)
            config.Storage = spec.fileStorage ? js_FileStorage : js_MemoryStorage
            config.MaxAge = spec.maxAge?.nanoseconds ?? 0
            config.MaxBytes = spec.maxBytes ?? -1
            config.Duplicates = spec.duplicateWindow.nanoseconds
            subjects.withUnsafeMutableBufferPointer { buffer in
                config.Subjects = buffer.baseAddress
                config.SubjectsLen = Int32(buffer.count)
                var info: UnsafeMutablePointer<jsStreamInfo>? = nil
                status = js_AddStream(&info, js.pointer, &config, nil, &errorCode)
                if status != NATS_OK, errorCode == JSStreamNameExistErr {
                    status = js_UpdateStream(&info, js.pointer, &config, nil, &errorCode)
                }
                if let info { jsStreamInfo_Destroy(info) }
                config.Subjects = nil
            }
            guard status == NATS_OK else {
                throw NATSError(.jetStream, "create stream \(spec.name): \(jetStreamErrorText(status, errorCode))")
            }
        }
    }

    /// Publishes to a stream and waits for the server's acknowledgement (the message is then stored).
    /// `messageID` makes retries idempotent within the stream's duplicate window.
    ///
    /// This uses the connection's asynchronous request path (a JetStream publish is a request whose
    /// reply is the ack), so it never blocks a thread, unlike libnats's synchronous `js_Publish`.
    public func jetStreamPublish(
        _ subject: String,
        payload: Data,
        headers: NATSHeaders = [:],
        messageID: String? = nil,
        timeout: Duration = .seconds(5)
    ) async throws -> JetStreamPublishAck {
        var headers = headers
        if let messageID { headers[NATSHeaderName.messageID] = messageID }
        let reply: NATSMessage
        do {
            reply = try await request(subject, payload: payload, headers: headers, timeout: timeout)
        } catch let error as NATSError where error.code == .noResponders {
            throw NATSError(.jetStream, "no stream stores subject \(subject)")
        }
        if let ack = JetStreamPublishAck(reply: reply.payload) { return ack }
        let apiError = try? JSONDecoder().decode(JetStreamAPIErrorReply.self, from: reply.payload)
        throw NATSError(.jetStream, "publish to \(subject): \(apiError?.error.description ?? "unexpected reply")")
    }

    /// Creates (or binds to) a durable push consumer and subscribes as a member of its deliver group.
    /// Messages must be acknowledged with `ack(_:)`; unacknowledged ones are redelivered after `ackWait`.
    /// Unsubscribing leaves the durable consumer on the server, so delivery resumes after a restart.
    public func durableSubscription(_ spec: JetStreamConsumerSpec) async throws -> NATSSubscription {
        try await ensureConsumer(spec)
        return try bindDurable(spec)
    }

    /// Joins the deliver group of a durable push consumer that exists (or will: messages flow once
    /// it does). Needs no JetStream API permission: what a service may read is decided by whoever
    /// created the consumer.
    public func bindDurable(_ spec: JetStreamConsumerSpec) throws(NATSError) -> NATSSubscription {
        try subscribe(spec.deliverSubject, queue: spec.deliverGroup)
    }

    /// Creates the durable push consumer if it does not exist (several replicas may race).
    public func ensureConsumer(_ spec: JetStreamConsumerSpec) async throws {
        let js = OpaquePointerBox(jetStreamContext)
        try await runBlocking {
            var config = jsConsumerConfig()
            jsConsumerConfig_Init(&config)
            let texts: [String] = [spec.durableName, spec.deliverSubject, spec.deliverGroup, spec.filterSubject ?? ""]
            let strings = texts.map { strdup($0) }
            defer { strings.forEach { free($0) } }
            config.Durable = UnsafePointer(strings[0])
            config.DeliverSubject = UnsafePointer(strings[1])
            config.DeliverGroup = UnsafePointer(strings[2])
            config.FilterSubject = spec.filterSubject == nil ? nil : UnsafePointer(strings[3])
            config.AckPolicy = js_AckExplicit
            config.DeliverPolicy = js_DeliverAll
            config.AckWait = spec.ackWait.nanoseconds
            config.MaxDeliver = Int64(spec.maxDeliver)
            config.MaxAckPending = Int64(spec.maxAckPending)
            var info: UnsafeMutablePointer<jsConsumerInfo>? = nil
            var errorCode = jsErrCode(0)
            let status = js_AddConsumer(&info, js.pointer, spec.stream, &config, nil, &errorCode)
            if let info { jsConsumerInfo_Destroy(info) }
            // An existing consumer with the same configuration is fine (several replicas start together).
            guard status == NATS_OK || errorCode == JSConsumerNameExistErr || errorCode == JSConsumerExistingActiveErr else {
                throw NATSError(.jetStream, "create consumer \(spec.durableName) on \(spec.stream): \(jetStreamErrorText(status, errorCode))")
            }
        }
    }

    /// A durable consumer's backlog as the server counts it, over the asynchronous request path.
    public func consumerState(stream: String, consumer: String, timeout: Duration = .seconds(2)) async throws -> JetStreamConsumerState {
        let reply = try await request("$JS.API.CONSUMER.INFO.\(stream).\(consumer)", payload: Data(), headers: [:], timeout: timeout)
        if let state = try? JSONDecoder().decode(JetStreamConsumerState.self, from: reply.payload) { return state }
        let apiError = try? JSONDecoder().decode(JetStreamAPIErrorReply.self, from: reply.payload)
        throw NATSError(.jetStream, "consumer \(consumer) on \(stream): \(apiError?.error.description ?? "unexpected reply")")
    }

    /// Acknowledges a JetStream message: it will not be redelivered.
    public func ack(_ message: JetStreamMessage) throws(NATSError) {
        guard let reply = message.message.replyTo else { return }
        try publish(reply, payload: Data("+ACK".utf8), headers: [:], replyTo: nil)
    }

    /// Asks for redelivery, optionally after a delay.
    public func nak(_ message: JetStreamMessage, delay: Duration? = nil) throws(NATSError) {
        guard let reply = message.message.replyTo else { return }
        let body = delay.map { "-NAK {\"delay\": \($0.nanoseconds)}" } ?? "-NAK"
        try publish(reply, payload: Data(body.utf8), headers: [:], replyTo: nil)
    }

    /// Removes a stream (tests and administrative resets).
    public func deleteStream(_ name: String) async throws {
        let js = OpaquePointerBox(jetStreamContext)
        try await runBlocking {
            var errorCode = jsErrCode(0)
            let status = js_DeleteStream(js.pointer, name, nil, &errorCode)
            guard status == NATS_OK || status == NATS_NOT_FOUND else {
                throw NATSError(.jetStream, "delete stream \(name): \(jetStreamErrorText(status, errorCode))")
            }
        }
    }
}

struct JetStreamAPIErrorReply: Decodable {
    struct APIError: Decodable, CustomStringConvertible {
        var code: Int
        var errCode: Int?
        var description: String

        enum CodingKeys: String, CodingKey { case code, errCode = "err_code", description }
    }

    var error: APIError
}

func jetStreamErrorText(_ status: natsStatus, _ errorCode: jsErrCode) -> String {
    var text = natsStatus_GetText(status).map { String(cString: $0) } ?? "status \(status.rawValue)"
    if errorCode.rawValue != 0 { text += " (JetStream error \(errorCode.rawValue))" }
    if let last = nats_GetLastError(nil) {
        let detail = String(cString: last)
        if !detail.isEmpty, detail != text { text += ": \(detail)" }
    }
    return text
}

/// Messages of one subject read back from a stream, from a given sequence on, then live as they are
/// stored: an ephemeral, unacknowledged push consumer. `close()` deletes it (the server also drops
/// it after `inactiveThreshold` without a subscriber, so a crashed reader leaves nothing behind).
public final class JetStreamReader: AsyncSequence, Sendable {
    public typealias Element = JetStreamMessage
    let subscription: NATSSubscription
    let connection: NATSConnection
    let stream: String
    public let consumer: String

    init(subscription: NATSSubscription, connection: NATSConnection, stream: String, consumer: String) {
        self.subscription = subscription
        self.connection = connection
        self.stream = stream
        self.consumer = consumer
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var messages: AsyncStream<NATSMessage>.Iterator

        public mutating func next() async -> JetStreamMessage? {
            while let message = await messages.next() {
                // Flow-control and heartbeat messages carry no stream metadata: skip them.
                if let delivered = JetStreamMessage(message) { return delivered }
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(messages: subscription.makeAsyncIterator())
    }

    public func close() async {
        subscription.unsubscribe()
        _ = try? await connection.request("$JS.API.CONSUMER.DELETE.\(stream).\(consumer)", payload: Data(), headers: [:], timeout: .seconds(2))
    }
}

extension NATSConnection {
    /// Reads `subject` from `stream` starting at `startSequence` (or only new messages when nil).
    /// Uses the JetStream API over the asynchronous request path: no thread blocks.
    public func read(stream: String, subject: String, startSequence: UInt64?, inactiveThreshold: Duration = .seconds(30)) async throws
        -> JetStreamReader
    {
        var random = SystemRandomNumberGenerator()
        // Under this connection's own inboxes (two more tokens, so the reply-inbox wildcard misses it):
        // NATS permissions let only this service subscribe there.
        let inbox = "\(inboxPrefix).js.\(String(random.next() as UInt64, radix: 36))\(String(random.next() as UInt64, radix: 36))"
        let subscription = try subscribe(inbox, queue: nil)
        var config: [String: Any] = [
            "deliver_subject": inbox,
            "filter_subject": subject,
            "ack_policy": "none",
            "mem_storage": true,
            "num_replicas": 1,
            "inactive_threshold": inactiveThreshold.nanoseconds,
        ]
        if let startSequence {
            config["deliver_policy"] = "by_start_sequence"
            config["opt_start_seq"] = startSequence
        } else {
            config["deliver_policy"] = "new"
        }
        let body = try JSONSerialization.data(withJSONObject: ["stream_name": stream, "config": config])
        let reply: NATSMessage
        do {
            reply = try await request("$JS.API.CONSUMER.CREATE.\(stream)", payload: body, headers: [:], timeout: .seconds(5))
        } catch {
            subscription.unsubscribe()
            throw NATSError(.jetStream, "read \(subject) from \(stream): \(error)")
        }
        struct Created: Decodable { var name: String }
        guard let created = try? JSONDecoder().decode(Created.self, from: reply.payload) else {
            subscription.unsubscribe()
            let apiError = try? JSONDecoder().decode(JetStreamAPIErrorReply.self, from: reply.payload)
            throw NATSError(.jetStream, "read \(subject) from \(stream): \(apiError?.error.description ?? "unexpected reply")")
        }
        return JetStreamReader(subscription: subscription, connection: self, stream: stream, consumer: created.name)
    }
}
