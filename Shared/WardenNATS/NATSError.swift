/// Every failure the messaging layer reports. Callers switch on `code`; `detail` is for logs and never holds payloads.
public struct NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// The connection is not (yet, or no longer) connected: the call failed fast instead of waiting.
        case notConnected = "not_connected"
        /// No subscriber listens on the subject.
        case noResponders = "no_responders"
        /// The deadline passed before a reply arrived.
        case timeout
        /// The connection was closed by `close()`.
        case connectionClosed = "connection_closed"
        /// The payload exceeds the server's `max_payload`.
        case payloadTooLarge = "payload_too_large"
        /// The subject or queue name is not valid NATS syntax.
        case invalidSubject = "invalid_subject"
        /// A JetStream API call failed (stream missing, wrong sequence, ...).
        case jetStream = "jetstream"
        /// A key-value entry was not found.
        case keyNotFound = "key_not_found"
        /// A key-value bucket does not exist (and was not to be created).
        case bucketMissing = "bucket_missing"
        /// A key-value write lost a race (wrong expected revision, or the key already exists).
        case keyConflict = "key_conflict"
        /// Any other status from the C client.
        case library
    }

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String = "") {
        self.code = code
        self.detail = detail
    }

    public var description: String { detail.isEmpty ? "NATS \(code.rawValue)" : "NATS \(code.rawValue): \(detail)" }
}
