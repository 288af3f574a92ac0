/// The attributes Warden's own code sets on a span, keyed by literal names: kept in the order set
/// and found by a short scan, where swift-distributed-tracing's `SpanAttributes` (a dictionary of
/// boxed values) hashed every key, grew its storage and was walked again to encode (measured: about
/// a quarter of what tracing cost a proxied call). Attributes set through the `Span` protocol's
/// `attributes` are kept apart and exported too.
package struct SpanFields: Sendable {
    package enum Value: Sendable, Equatable {
        case string(String)
        case int(Int64)
    }

    private(set) var entries: [(key: StaticString, value: Value)] = []

    init() {}

    package subscript(key: StaticString) -> Value? {
        get { entries.first { Self.same($0.key, key) }?.value }
        set {
            if let index = entries.firstIndex(where: { Self.same($0.key, key) }) {
                if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                // A request's span carries up to nine: one allocation, no growth (none for a span
                // given no attributes, or not recorded).
                if entries.capacity == 0 { entries.reserveCapacity(10) }
                entries.append((key, newValue))
            }
        }
    }

    package subscript(key: StaticString) -> String? {
        get { if case .string(let text)? = self[key] as Value? { text } else { nil } }
        set { self[key] = newValue.map(Value.string) }
    }

    package subscript(key: StaticString) -> Int? {
        get { if case .int(let number)? = self[key] as Value? { Int(number) } else { nil } }
        set { self[key] = newValue.map { .int(Int64($0)) } }
    }

    package var isEmpty: Bool { entries.isEmpty }

    /// Whether a key with this text is set (a key set through the `Span` protocol, as a `String`).
    func contains(_ key: String) -> Bool {
        entries.contains { entry in entry.key.withUTF8Buffer { $0.elementsEqual(key.utf8) } }
    }

    /// The same text: the same literal, or the same bytes. (`withUTF8Buffer` reads a literal of one
    /// character too, which has no pointer of its own.)
    @inline(__always)
    static func same(_ a: StaticString, _ b: StaticString) -> Bool {
        // Usually the same literal at the same address: compared without reading either.
        if a.hasPointerRepresentation && b.hasPointerRepresentation && a.utf8Start == b.utf8Start
            && a.utf8CodeUnitCount == b.utf8CodeUnitCount
        {
            return true
        }
        return a.withUTF8Buffer { a in b.withUTF8Buffer { b in same(a, b) } }
    }

    static func same(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        a.count == b.count && (a.baseAddress == b.baseAddress || a.elementsEqual(b))
    }
}
