import Logging

/// Wraps a log handler: what it writes has every value `LogRedaction` knows replaced.
///
/// The logger's metadata is kept here and handed to the wrapped handler with each event, not set
/// on it: `StreamLogHandler` renders its whole metadata again on every change, and Hummingbird sets
/// a request id on every request's logger (that rendering cost about 1.5% of the gateway's CPU
/// under load, for lines that are almost never written).
struct RedactingLogHandler: LogHandler {
    var wrapped: any LogHandler
    var metadata: Logger.Metadata = [:]

    init(wrapped: any LogHandler) {
        self.wrapped = wrapped
        metadata = wrapped.metadata
        self.wrapped.metadata = [:]
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty { event.metadata = metadata.merging(event.metadata ?? [:]) { $1 } }
        let redactor = LogRedaction.redactor
        guard !redactor.isEmpty else { return wrapped.log(event: event) }
        if let message = redactor.redact(event.message.description) { event.message = "\(message)" }
        event.metadata = event.metadata.map { Self.redact($0, redactor) }
        if let error = event.error, let text = redactor.redact("\(error)") {
            event.error = nil
            event.metadata = (event.metadata ?? [:]).merging(["error": .string(text)]) { $1 }
        }
        wrapped.log(event: event)
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
