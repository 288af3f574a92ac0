import Foundation
import Logging
import ServiceContextModule
import Tracing
import WardenContracts

/// The id of the request a task works for: taken from the client's `X-Request-Id` when it is
/// well-formed, made otherwise, and carried in the task's `ServiceContext` — into every log line
/// (`metadataProvider`), every NATS request (`Warden-Request-Id`) and every audit event.
package enum RequestID {
    package static let header = "X-Request-Id"

    /// The current task's request id, if it works for a request.
    package static var current: String? { ServiceContext.current?.requestID }

    /// 1 to 128 characters of letters, digits and `-._:` — an id a client chose is put into logs
    /// and headers as it is, so nothing else is taken.
    package static func isWellFormed(_ id: some StringProtocol) -> Bool {
        (1...128).contains(id.utf8.count)
            && id.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
                case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"): true
                default: false
                }
            }
    }

    package static func make() -> String { UniqueID.make() }

    /// Adds `request.id` and, when the request is traced, `trace.id` and `span.id` to every log line.
    package static let metadataProvider = Logger.MetadataProvider {
        var metadata: Logger.Metadata = [:]
        if let id = ServiceContext.current?.requestID { metadata["request.id"] = .string(id) }
        if let span = WardenTrace.currentSpan?.spanContext {
            metadata["trace.id"] = .string(span.traceID.hex)
            metadata["span.id"] = .string(span.spanID.hex)
        }
        return metadata
    }
}

private enum RequestIDKey: ServiceContextKey {
    typealias Value = String
    static var nameOverride: String? { "warden.request.id" }
}

extension ServiceContext {
    package var requestID: String? {
        get { self[RequestIDKey.self] }
        set { self[RequestIDKey.self] = newValue }
    }

}
