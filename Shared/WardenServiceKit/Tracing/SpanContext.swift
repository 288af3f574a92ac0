import ServiceContextModule

/// A span's W3C trace context: what a child span and the next hop inherit. Parsed from and written as
/// a `traceparent` value (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`).
package struct SpanContext: Sendable, Equatable {
    package var traceID: TraceID
    package var spanID: SpanID
    package var sampled: Bool
    /// The caller's `tracestate`, passed on unchanged (at most 512 printable ASCII characters).
    package var traceState: String?
    /// Whether `sampled` was decided by Warden (a span here, or a service over NATS) rather than by
    /// an outside client, whose flag is not followed.
    package var decided = true

    package struct TraceID: Sendable, Hashable {
        package var high: UInt64
        package var low: UInt64
        package var bytes: [UInt8] { (high.bigEndian.bytes + low.bigEndian.bytes) }
        package var hex: String { Hex.string(high) + Hex.string(low) }
        static func random() -> TraceID {
            var id = TraceID(high: 0, low: 0)
            while id.high == 0 && id.low == 0 { id = TraceID(high: SpanIDGenerator.next(), low: SpanIDGenerator.next()) }
            return id
        }
    }

    package struct SpanID: Sendable, Hashable {
        package var value: UInt64
        package var bytes: [UInt8] { value.bigEndian.bytes }
        package var hex: String { Hex.string(value) }
        static func random() -> SpanID {
            var value: UInt64 = 0
            while value == 0 { value = SpanIDGenerator.next() }
            return SpanID(value: value)
        }
    }

    /// Written into one string (it goes into every downstream request of a traced call).
    package var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { buffer in
            let dash = UInt8(ascii: "-"), zero = UInt8(ascii: "0")
            buffer[0] = zero
            buffer[1] = zero
            buffer[2] = dash
            Hex.write(traceID.high, into: buffer, at: 3)
            Hex.write(traceID.low, into: buffer, at: 19)
            buffer[35] = dash
            Hex.write(spanID.value, into: buffer, at: 36)
            buffer[52] = dash
            buffer[53] = zero
            buffer[54] = sampled ? UInt8(ascii: "1") : zero
            return 55
        }
    }

    /// A well-formed `traceparent` of version 00 (others are read as 00, as the spec asks), with
    /// neither id all zeros; nil otherwise.
    package init?(traceparent: String, traceState: String? = nil) {
        let parts = traceparent.utf8.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        // Version 00 is exactly four fields; a later version may add fields after them.
        guard parts.count >= 4, parts[0].count == 2, let version = Hex.value(parts[0]), version != 0xFF, version != 0 || parts.count == 4,
            parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
            let high = Hex.value(parts[1].prefix(16)), let low = Hex.value(parts[1].suffix(16)), let span = Hex.value(parts[2]),
            let flags = Hex.value(parts[3]), high != 0 || low != 0, span != 0
        else { return nil }
        self.traceID = TraceID(high: high, low: low)
        self.spanID = SpanID(value: span)
        self.sampled = flags & 1 == 1
        self.traceState = traceState.flatMap { state in
            state.utf8.count <= 512 && state.utf8.allSatisfy { (0x20...0x7E).contains($0) } ? state : nil
        }
    }

    package init(traceID: TraceID, spanID: SpanID, sampled: Bool, traceState: String?) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
        self.traceState = traceState
    }
}

private enum SpanContextKey: ServiceContextKey {
    typealias Value = SpanContext
    static var nameOverride: String? { "warden.span" }
}

extension ServiceContext {
    /// A span's trace context as swift-distributed-tracing's `Tracer` protocol carries it
    /// (`WardenTracer.startSpan`, `extract`, `inject`, `WardenSpan.context`). Warden's own code
    /// does not use it: its current span is `WardenTrace.currentSpan`.
    package var spanContext: SpanContext? {
        get { self[SpanContextKey.self] }
        set { self[SpanContextKey.self] = newValue }
    }
}

/// Lowercase hexadecimal, as W3C trace context writes ids.
enum Hex {
    static func string(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            write(value, into: buffer, at: 0)
            return 16
        }
    }

    /// `value`'s 16 digits at `offset`, two at a time.
    static func write(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        pairs.withUnsafeBufferPointer { pairs in
            for index in 0..<8 {
                let pair = pairs[Int(truncatingIfNeeded: value >> UInt64(56 - 8 * index)) & 0xFF]
                buffer[offset + 2 * index] = UInt8(truncatingIfNeeded: pair >> 8)
                buffer[offset + 2 * index + 1] = UInt8(truncatingIfNeeded: pair)
            }
        }
    }

    /// Each byte's two digits (high digit in the high byte).
    private static let pairs: [UInt16] = (0..<256).map { byte in
        let digits = Array("0123456789abcdef".utf8)
        return UInt16(digits[byte >> 4]) << 8 | UInt16(digits[byte & 0xF])
    }

    static func value(_ text: some Collection<UInt8>) -> UInt64? {
        guard !text.isEmpty, text.count <= 16 else { return nil }
        var value: UInt64 = 0
        for byte in text {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
}

extension UInt64 {
    fileprivate var bytes: [UInt8] { withUnsafeBytes(of: self) { Array($0) } }
}
