import Tracing

/// Encodes spans as an OTLP `ExportTraceServiceRequest` (opentelemetry-proto, trace/v1) in protobuf's
/// wire format: the few messages and fields Warden sends, written directly, back to front
/// (`ProtobufWriter`: each message's fields last first).
package enum OTLPEncoder {
    /// Who sent the spans: `service.name` and friends.
    package struct Resource: Sendable {
        var attributes: [(String, String)]

        package init(serviceName: String, instance: String, version: String) {
            attributes = [("service.name", serviceName), ("service.instance.id", instance), ("service.version", version)]
        }
    }

    /// A request carrying `entries`: spans already encoded as `ScopeSpans.spans` entries (`SpanBuffer`).
    static func request(resource: Resource, entries: ArraySlice<UInt8>) -> [UInt8] {
        var request = ProtobufWriter(capacity: 256 + entries.count)
        request.message(1) { resourceSpans in
            resourceSpans.message(2) { scopeSpans in
                entries.withUnsafeBytes { scopeSpans.raw($0) }
                scopeSpans.message(1) { $0.string(1, "warden" as StaticString) }
            }
            resourceSpans.message(1) { resourceMessage in
                for (key, value) in resource.attributes.reversed() {
                    resourceMessage.message(1) { pair in
                        pair.message(2) { $0.string(1, value) }
                        pair.string(1, key)
                    }
                }
            }
        }
        return request.bytes
    }

    /// One span's message.
    static func encode(_ span: FinishedSpan) -> [UInt8] {
        var message = ProtobufWriter()
        encode(span, into: &message)
        return message.bytes
    }

    /// A span's fields, last first.
    static func encode(_ span: FinishedSpan, into message: inout ProtobufWriter) {
        if let status = span.status {
            message.message(15) { $0.varint(3, status.code == .error ? 2 : 1) }
        }
        // A key is exported once (OTLP asks keys to be unique): Warden's own fields win. Those set
        // through the `Span` protocol come after Warden's (in no particular order).
        span.attributes.forEach { key, value in
            if !span.fields.contains(key) { message.message(9) { keyValue(key, value, into: &$0) } }
        }
        for (key, value) in span.fields.entries.reversed() {
            message.message(9) { pair in
                pair.message(2) { any in
                    switch value {
                    case .string(let text): any.string(1, text)
                    case .int(let number): any.varint(3, UInt64(bitPattern: number))
                    }
                }
                pair.string(1, key)
            }
        }
        message.fixed64(8, span.end)
        message.fixed64(7, span.start)
        message.varint(6, kind(span.kind))
        message.string(5, span.name)
        if let parent = span.parentSpanID { message.bigEndian(4, parent.value) }
        if let state = span.context.traceState { message.string(3, state) }
        message.bigEndian(2, span.context.spanID.value)
        message.bigEndian(1, high: span.context.traceID.high, low: span.context.traceID.low)
    }

    static func kind(_ kind: SpanKind) -> UInt64 {
        switch kind {
        case .internal: 1
        case .server: 2
        case .client: 3
        case .producer: 4
        case .consumer: 5
        }
    }

    /// A `KeyValue`'s fields (key, then an `AnyValue`), last first: strings, bools, integers and
    /// doubles as themselves, anything else as its text.
    static func keyValue(_ key: String, _ value: SpanAttribute, into pair: inout ProtobufWriter) {
        pair.message(2) { any in
            switch value {
            case .string(let text): any.string(1, text)
            case .bool(let flag): any.varint(2, flag ? 1 : 0)
            case .int32(let number): any.varint(3, UInt64(bitPattern: Int64(number)))
            case .int64(let number): any.varint(3, UInt64(bitPattern: number))
            case .double(let number): any.fixed64(4, number.bitPattern)
            default: any.string(1, "\(value)")
            }
        }
        pair.string(1, key)
    }
}
