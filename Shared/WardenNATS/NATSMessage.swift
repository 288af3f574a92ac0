import Foundation

/// NATS message headers. Warden uses single-valued headers only; names are case-sensitive as on the wire.
public typealias NATSHeaders = [String: String]

/// Well-known header names Warden puts on every cross-service message.
public enum NATSHeaderName {
    /// Correlates one request across services and logs.
    public static let requestID = "Warden-Request-Id"
    /// Who is calling: `<service>/<instance>` for service-to-service calls.
    public static let caller = "Warden-Caller"
    /// W3C trace context.
    public static let traceparent = "traceparent"
    /// JetStream de-duplication id.
    public static let messageID = "Nats-Msg-Id"
}

/// A message received from NATS, copied out of the C client's buffers (so it is safe to keep and send across tasks).
public struct NATSMessage: Sendable, Equatable {
    public var subject: String
    public var replyTo: String?
    public var headers: NATSHeaders
    public var payload: Data

    public init(subject: String, replyTo: String? = nil, headers: NATSHeaders = [:], payload: Data = Data()) {
        self.subject = subject
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }
}
