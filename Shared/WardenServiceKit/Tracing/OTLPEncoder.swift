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
        // About 300 bytes a span: the batch is written without growing the buffer much.
        scopeSpans.bytes.reserveCapacity(64 + spans.count * 320)
        scopeSpans.message(1, scope)
        // Each span is written into one scratch message, reused, and copied in with its length.
        var scratch = Message()
        scratch.bytes.reserveCapacity(1_024)
        for span in spans {
            scratch.bytes.removeAll(keepingCapacity: true)
            encode(span, into: &scratch)
            scopeSpans.message(2, scratch)
        }
        var resourceSpans = Message()
        resourceSpans.bytes.reserveCapacity(resourceMessage.bytes.count + scopeSpans.bytes.count + 16)
        resourceSpans.message(1, resourceMessage)
        resourceSpans.message(2, scopeSpans)
        var request = Message()
        request.bytes.reserveCapacity(resourceSpans.bytes.count + 8)
        request.message(1, resourceSpans)
        return request.bytes
    }

    static func encode(_ span: FinishedSpan) -> Message {
        var message = Message()
        encode(span, into: &message)
        return message
    }

    static func encode(_ span: FinishedSpan, into message: inout Message) {
        message.fixed128(1, high: span.context.traceID.high, low: span.context.traceID.low)
        message.fixed64BigEndian(2, span.context.spanID.value)
        if let state = span.context.traceState { message.string(3, state) }
        if let parent = span.parentSpanID { message.fixed64BigEndian(4, parent.value) }
        message.string(5, span.name)
        message.varint(6, kind(span.kind))
        message.fixed64(7, span.start)
        message.fixed64(8, span.end)
        for (key, value) in span.fields.entries { message.keyValue(9, key, value) }
        // A key is exported once (OTLP asks keys to be unique): Warden's own fields win.
        span.attributes.forEach { key, value in if !span.fields.contains(key) { message.keyValue(9, key, value) } }
        if let status = span.status {
            // Status { code = 3 }: two bytes.
            message.tag(15, 2)
            message.raw(2)
            message.varint(3, status.code == .error ? 2 : 1)
        }
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

        /// A `bytes` field of 16 bytes: a trace id, big-endian.
        mutating func fixed128(_ field: Int, high: UInt64, low: UInt64) {
            tag(field, 2)
            raw(16)
            withUnsafeBytes(of: high.bigEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: low.bigEndian) { bytes.append(contentsOf: $0) }
        }

        /// A `bytes` field of 8 bytes: a span id, big-endian.
        mutating func fixed64BigEndian(_ field: Int, _ value: UInt64) {
            tag(field, 2)
            raw(8)
            withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        }

        mutating func string(_ field: Int, _ value: String) {
            tag(field, 2)
            raw(UInt64(value.utf8.count))
            bytes.append(contentsOf: value.utf8)
        }

        mutating func string(_ field: Int, _ value: StaticString) {
            value.withUTF8Buffer { text in
                tag(field, 2)
                raw(UInt64(text.count))
                bytes.append(contentsOf: text)
            }
        }

        /// A `KeyValue` from `SpanFields`, written in place.
        mutating func keyValue(_ field: Int, _ key: StaticString, _ value: SpanFields.Value) {
            key.withUTF8Buffer { key in
                switch value {
                case .string(let text):
                    keyValue(field, key: key, anyLength: 1 + Self.size(UInt64(text.utf8.count)) + text.utf8.count) { $0.string(1, text) }
                case .int(let number):
                    keyValue(field, key: key, anyLength: 1 + Self.size(UInt64(bitPattern: number))) { $0.varint(3, UInt64(bitPattern: number)) }
                }
            }
        }

        /// A `KeyValue` written in place: its key, then an `AnyValue` of `anyLength` bytes that
        /// `value` writes (lengths come first in protobuf, so they are counted, not measured after).
        mutating func keyValue(_ field: Int, key: UnsafeBufferPointer<UInt8>, anyLength: Int, _ value: (inout Message) -> Void) {
            tag(field, 2)
            raw(UInt64(1 + Self.size(UInt64(key.count)) + key.count + 1 + Self.size(UInt64(anyLength)) + anyLength))
            tag(1, 2)
            raw(UInt64(key.count))
            bytes.append(contentsOf: key)
            tag(2, 2)
            raw(UInt64(anyLength))
            value(&self)
        }

        mutating func message(_ field: Int, _ value: Message) { bytes(field, value.bytes) }

        /// A `KeyValue` whose value is a string, a bool, an integer or a double, written in place
        /// (the hot part of encoding: a span has a dozen); other values go through `OTLPEncoder.keyValue`.
        mutating func keyValue(_ field: Int, _ key: String, _ value: SpanAttribute) {
            switch value {
            case .string, .bool, .int32, .int64, .double: break
            default: return message(field, OTLPEncoder.keyValue(key, value))
            }
            var key = key
            key.withUTF8 { key in
                switch value {
                case .string(let text):
                    keyValue(field, key: key, anyLength: 1 + Self.size(UInt64(text.utf8.count)) + text.utf8.count) { $0.string(1, text) }
                case .bool(let flag): keyValue(field, key: key, anyLength: 2) { $0.varint(2, flag ? 1 : 0) }
                case .int32(let number):
                    let wide = UInt64(bitPattern: Int64(number))
                    keyValue(field, key: key, anyLength: 1 + Self.size(wide)) { $0.varint(3, wide) }
                case .int64(let number):
                    keyValue(field, key: key, anyLength: 1 + Self.size(UInt64(bitPattern: number))) { $0.varint(3, UInt64(bitPattern: number)) }
                case .double(let number): keyValue(field, key: key, anyLength: 9) { $0.fixed64(4, number.bitPattern) }
                default: break
                }
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
