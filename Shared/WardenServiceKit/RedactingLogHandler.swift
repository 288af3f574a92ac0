import Logging

/// Wraps a log handler: what it writes has every value `LogRedaction` knows replaced.
struct RedactingLogHandler: LogHandler {
    var wrapped: any LogHandler

    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
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
