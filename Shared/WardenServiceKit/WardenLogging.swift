import Foundation
import Logging
import Synchronization

/// Process-wide logging set-up: one line per event on stderr, as text or JSON, with every secret
/// value the process holds (`LogRedaction`) taken out.
public enum WardenLogging {
    private static let bootstrapped = Mutex(false)

    /// Bootstraps swift-log once per process (later calls are ignored).
    public static func bootstrap(format: ServiceConfiguration.LogFormat, level: Logger.Level) {
        let first = bootstrapped.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        // Every line names the request and trace its task works for (`RequestID.metadataProvider`).
        LoggingSystem.bootstrap(
            { label, provider in
                switch format {
                case .text:
                    var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
                    handler.logLevel = level
                    return RedactingLogHandler(wrapped: handler)
                case .json:
                    var handler = JSONLogHandler(label: label, logLevel: level)
                    handler.metadataProvider = provider
                    return RedactingLogHandler(wrapped: handler)
                }
            }, metadataProvider: RequestID.metadataProvider)
    }
}

/// Writes each log event as one JSON object per line on stderr (for log shippers).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level
    let label: String
    private static let output = Mutex(())

    public init(label: String, logLevel: Logger.Level) {
        self.label = label
        self.logLevel = logLevel
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        guard
            let line = Self.render(
                label: label, level: event.level, message: event.message,
                metadata: metadata.merging(metadataProvider?.get() ?? [:]) { $1 }.merging(event.metadata ?? [:]) { $1 },
                time: Date())
        else { return }
        Self.output.withLock { _ in FileHandle.standardError.write(line) }
    }

    /// One event as a JSON object and a newline. Metadata keys sit beside the fixed fields; a
    /// metadata key named like a fixed field does not replace it.
    static func render(label: String, level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata, time: Date) -> Data? {
        var fields: [String: String] = [:]
        for (key, value) in metadata { fields[key] = value.description }
        fields["time"] = time.formatted(.iso8601)
        fields["level"] = level.rawValue
        fields["logger"] = label
        fields["message"] = message.description
        guard var line = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return nil }
        line.append(0x0A)
        return line
    }
}
