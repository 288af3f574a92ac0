import Tracing

/// Encodes spans as an OTLP `ExportTraceServiceRequest` (opentelemetry-proto, trace/v1) in protobuf's
/// wire format: the few messages and fields Warden sends, written directly.
package enum OTLPEncoder {
    /// Who sent the spans: `service.name` and friends.
    package struct Resource: Sendable {
        var attributes: [(String, String)]

        package init(serviceName: String, instance: String, version: String) {
            attributes = [("service.name", serviceName), ("service.instance.id", instance), ("service.version", version)]
        }
    }

    static func request(resource: Resource, spans: some Collection<FinishedSpan>) -> [UInt8] {
        var resourceMessage = Message()
        for (key, value) in resource.attributes { resourceMessage.message(1, keyValue(key, .string(value))) }
        var scope = Message()
        scope.string(1, "warden")
        var scopeSpans = Message()
        scopeSpans.message(1, scope)
        for span in spans { scopeSpans.message(2, encode(span)) }
        var resourceSpans = Message()
        resourceSpans.message(1, resourceMessage)
        resourceSpans.message(2, scopeSpans)
        var request = Message()
        request.message(1, resourceSpans)
        return request.bytes
    }

    static func encode(_ span: FinishedSpan) -> Message {
        var message = Message()
        message.bytes(1, span.context.traceID.bytes)
        message.bytes(2, span.context.spanID.bytes)
        if let state = span.context.traceState { message.string(3, state) }
        if let parent = span.parentSpanID { message.bytes(4, parent.bytes) }
        message.string(5, span.name)
        message.varint(6, kind(span.kind))
        message.fixed64(7, span.start)
        message.fixed64(8, span.end)
        span.attributes.forEach { key, value in message.keyValue(9, key, value) }
        if let status = span.status {
            var statusMessage = Message()
            statusMessage.varint(3, status.code == .error ? 2 : 1)
            message.message(15, statusMessage)
        }
        return message
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

    static func keyValue(_ key: String, _ value: SpanAttribute) -> Message {
        var any = Message()
        switch value {
        case .string(let text): any.string(1, text)
        case .bool(let flag): any.varint(2, flag ? 1 : 0)
        case .int32(let number): any.varint(3, UInt64(bitPattern: Int64(number)))
        case .int64(let number): any.varint(3, UInt64(bitPattern: number))
        case .double(let number): any.fixed64(4, number.bitPattern)
        default: any.string(1, "\(value)")
        }
        var pair = Message()
        pair.string(1, key)
        pair.message(2, any)
        return pair
    }

    /// A protobuf message being written: fields in order, nested messages length-prefixed.
    struct Message {
        var bytes: [UInt8] = []

        mutating func tag(_ field: Int, _ wireType: UInt8) { raw(UInt64(field) << 3 | UInt64(wireType)) }

        mutating func raw(_ value: UInt64) {
            var value = value
            while value >= 0x80 {
                bytes.append(UInt8(value & 0x7F) | 0x80)
                value >>= 7
            }
            bytes.append(UInt8(value))
        }

        mutating func varint(_ field: Int, _ value: UInt64) {
            tag(field, 0)
            raw(value)
        }

        mutating func fixed64(_ field: Int, _ value: UInt64) {
            tag(field, 1)
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }

        mutating func bytes(_ field: Int, _ value: [UInt8]) {
            tag(field, 2)
            raw(UInt64(value.count))
            bytes.append(contentsOf: value)
        }

        mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

        mutating func message(_ field: Int, _ value: Message) { bytes(field, value.bytes) }

        /// A `KeyValue` whose value is a string, a bool, an integer or a double, written in place
        /// (the hot part of encoding: a span has a dozen); other values go through `OTLPEncoder.keyValue`.
        mutating func keyValue(_ field: Int, _ key: String, _ value: SpanAttribute) {
            let anyLength: Int
            switch value {
            case .string(let text): anyLength = 1 + Self.size(UInt64(text.utf8.count)) + text.utf8.count
            case .bool: anyLength = 2
            case .int32(let number): anyLength = 1 + Self.size(UInt64(bitPattern: Int64(number)))
            case .int64(let number): anyLength = 1 + Self.size(UInt64(bitPattern: number))
            case .double: anyLength = 9
            default: return message(field, OTLPEncoder.keyValue(key, value))
            }
            let keyLength = key.utf8.count
            tag(field, 2)
            raw(UInt64(1 + Self.size(UInt64(keyLength)) + keyLength + 1 + Self.size(UInt64(anyLength)) + anyLength))
            string(1, key)
            tag(2, 2)
            raw(UInt64(anyLength))
            switch value {
            case .string(let text): string(1, text)
            case .bool(let flag): varint(2, flag ? 1 : 0)
            case .int32(let number): varint(3, UInt64(bitPattern: Int64(number)))
            case .int64(let number): varint(3, UInt64(bitPattern: number))
            case .double(let number): fixed64(4, number.bitPattern)
            default: break
            }
        }

        /// The bytes a varint of `value` takes.
        static func size(_ value: UInt64) -> Int {
            var value = value
            var count = 1
            while value >= 0x80 {
                value >>= 7
                count += 1
            }
            return count
        }
    }
}
