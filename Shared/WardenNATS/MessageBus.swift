import Foundation

/// What services need from NATS. `NATSConnection` is the real one; `InMemoryMessageBus` serves unit tests.
public protocol MessageBus: Sendable {
    /// Publishes a message; fails fast with `.notConnected` while the connection is down.
    func publish(_ subject: String, payload: Data, headers: NATSHeaders, replyTo: String?) throws(NATSError)

    /// Sends a request and waits for the first reply until `timeout`. Honours task cancellation.
    /// Throws `NATSError` (`.timeout`, `.noResponders`, `.notConnected`, ...) or `CancellationError`.
    func request(_ subject: String, payload: Data, headers: NATSHeaders, timeout: Duration) async throws -> NATSMessage

    /// Subscribes to a subject (wildcards allowed). Subscribers sharing a `queue` share the messages.
    func subscribe(_ subject: String, queue: String?) throws(NATSError) -> NATSSubscription

    /// Whether the connection is up right now.
    var isConnected: Bool { get }

    /// How many times the connection has been lost: what was published meanwhile did not reach this
    /// process's subscriptions, so anything kept on the strength of announcements is suspect.
    var outages: UInt64 { get }
}

extension MessageBus {
    public func publish(_ subject: String, payload: Data, headers: NATSHeaders = [:]) throws(NATSError) {
        try publish(subject, payload: payload, headers: headers, replyTo: nil)
    }

    public func request(_ subject: String, payload: Data, timeout: Duration) async throws -> NATSMessage {
        try await request(subject, payload: payload, headers: [:], timeout: timeout)
    }

    public func subscribe(_ subject: String) throws(NATSError) -> NATSSubscription {
        try subscribe(subject, queue: nil)
    }

    /// Answers a request message. A message without a reply subject is ignored.
    public func respond(to message: NATSMessage, payload: Data, headers: NATSHeaders = [:]) throws(NATSError) {
        guard let replyTo = message.replyTo else { return }
        try publish(replyTo, payload: payload, headers: headers, replyTo: nil)
    }
}

/// A stream of messages for one subscription. Iterate it; call `unsubscribe()` (or let the connection close) to end it.
public final class NATSSubscription: AsyncSequence, Sendable {
    public typealias Element = NATSMessage
    public typealias AsyncIterator = AsyncStream<NATSMessage>.Iterator

    public let subject: String
    public let queue: String?
    private let stream: AsyncStream<NATSMessage>
    private let onUnsubscribe: @Sendable () -> Void

    init(subject: String, queue: String?, stream: AsyncStream<NATSMessage>, onUnsubscribe: @escaping @Sendable () -> Void) {
        self.subject = subject
        self.queue = queue
        self.stream = stream
        self.onUnsubscribe = onUnsubscribe
    }

    public func makeAsyncIterator() -> AsyncStream<NATSMessage>.Iterator {
        stream.makeAsyncIterator()
    }

    /// Removes interest. Messages already buffered are still delivered, then iteration ends. Idempotent.
    public func unsubscribe() {
        onUnsubscribe()
    }
}

/// Subject syntax and wildcard matching, shared by the in-memory bus and validation.
public enum NATSSubject {
    /// A publishable subject: non-empty tokens separated by `.`, no spaces, no wildcards.
    public static func isValidPublishSubject(_ subject: String) -> Bool {
        isValid(subject, allowWildcards: false)
    }

    /// A subscribable subject: as above, `*` may stand for one token and `>` for the rest (last token only).
    public static func isValidSubscribeSubject(_ subject: String) -> Bool {
        isValid(subject, allowWildcards: true)
    }

    private static func isValid(_ subject: String, allowWildcards: Bool) -> Bool {
        guard !subject.isEmpty, subject.utf8.count <= 1024 else { return false }
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        for (index, token) in tokens.enumerated() {
            if token.isEmpty { return false }
            if token.contains(where: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }) { return false }
            if token == ">" {
                if !allowWildcards || index != tokens.count - 1 { return false }
            } else if token == "*" {
                if !allowWildcards { return false }
            } else if token.contains("*") || token.contains(">") {
                return false
            }
        }
        return true
    }

    /// Whether `subject` matches `pattern` (which may contain `*` and a trailing `>`).
    public static func matches(_ subject: String, pattern: String) -> Bool {
        let subjectTokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        let patternTokens = pattern.split(separator: ".", omittingEmptySubsequences: false)
        var index = 0
        while index < patternTokens.count {
            let token = patternTokens[index]
            if token == ">" { return subjectTokens.count > index }
            guard index < subjectTokens.count else { return false }
            if token != "*" && token != subjectTokens[index] { return false }
            index += 1
        }
        return index == subjectTokens.count
    }
}
