import Logging
import Synchronization

/// Secret values this process holds in the clear (credentials the gateway resolved), taken out of
/// every log event before it is written: its message and its metadata.
public enum LogRedaction {
    private static let current = Mutex(SecretRedactor.empty)
    private static let known = Mutex<[String: String]>([:])

    /// Adds values to redact (keyed by value, labelled by where they came from).
    public static func add(_ secrets: [(label: String, value: String)]) {
        let redactor = known.withLock { known -> SecretRedactor? in
            var changed = false
            for secret in secrets where secret.value.utf8.count >= SecretRedactor.minimumSecretBytes && known[secret.value] == nil {
                known[secret.value] = secret.label
                changed = true
            }
            return changed ? SecretRedactor(secrets: known.map { (label: $0.value, value: $0.key) }) : nil
        }
        if let redactor { current.withLock { $0 = redactor } }
    }

    static var redactor: SecretRedactor { current.withLock { $0 } }
}

/// Wraps a log handler: what it writes has every value `LogRedaction` knows replaced.
struct RedactingLogHandler: LogHandler {
    var wrapped: any LogHandler

    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        let redactor = LogRedaction.redactor
        guard !redactor.isEmpty else { return wrapped.log(event: event) }
        var event = event
        if let message = redactor.redact(event.message.description) { event.message = "\(message)" }
        event.metadata = event.metadata.map { Self.redact($0, redactor) }
        if let error = event.error, let text = redactor.redact("\(error)") {
            event.error = nil
            event.metadata = (event.metadata ?? [:]).merging(["error": .string(text)]) { $1 }
        }
        // The handler's own metadata (set on the logger) is redacted by the same rule.
        var handler = wrapped
        if !handler.metadata.isEmpty { handler.metadata = Self.redact(handler.metadata, redactor) }
        handler.log(event: event)
    }

    static func redact(_ metadata: Logger.Metadata, _ redactor: SecretRedactor) -> Logger.Metadata {
        metadata.mapValues { redact($0, redactor) }
    }

    static func redact(_ value: Logger.Metadata.Value, _ redactor: SecretRedactor) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(redactor.redact(text) ?? text)
        case .stringConvertible(let item): redactor.redact(item.description).map { .string($0) } ?? value
        case .array(let items): .array(items.map { redact($0, redactor) })
        case .dictionary(let members): .dictionary(members.mapValues { redact($0, redactor) })
        }
    }
}
