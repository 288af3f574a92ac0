/// Protobuf's wire format written back to front (as upb writes it): a nested message's content goes
/// in before its length and tag, so every length is known when it is written, with neither a sizing
/// pass nor a copy of the content. Callers therefore write a message's fields last first.
/// Memory of its own, grown by doubling; writes are stores through a pointer (measured: appending
/// byte by byte to arrays was most of what encoding a span cost).
struct ProtobufWriter: ~Copyable {
    private var storage: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    /// The written bytes are `storage[start..<capacity]`.
    private var start: Int

    init(capacity: Int = 1_024) {
        self.capacity = max(capacity, 64)
        self.storage = .allocate(capacity: self.capacity)
        self.start = self.capacity
    }

    deinit { storage.deallocate() }

    /// Bytes written so far.
    var count: Int { capacity - start }

    /// What was written, in order.
    var bytes: [UInt8] { withBytes { Array($0) } }

    func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        try body(UnsafeBufferPointer(start: storage + start, count: count))
    }

    /// Empty again, keeping its memory.
    mutating func reset() { start = capacity }

    /// Room for `needed` more bytes in front of what is written.
    @inline(__always)
    private mutating func reserve(_ needed: Int) {
        if start < needed { grow(needed) }
    }

    @inline(never)
    private mutating func grow(_ needed: Int) {
        let used = count
        let grown = max(capacity * 2, used + needed + 64)
        let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        (moved + grown - used).initialize(from: storage + start, count: used)
        storage.deallocate()
        storage = moved
        capacity = grown
        start = grown - used
    }

    /// A varint: seven bits a byte, least significant first. Most (tags, short lengths) are one byte.
    @inline(__always)
    mutating func raw(_ value: UInt64) {
        guard value >= 0x80 else {
            reserve(1)
            start -= 1
            storage[start] = UInt8(truncatingIfNeeded: value)
            return
        }
        rawLong(value)
    }

    private mutating func rawLong(_ value: UInt64) {
        let size = Self.size(value)
        reserve(size)
        start -= size
        var value = value
        var index = start
        while value >= 0x80 {
            storage[index] = UInt8(truncatingIfNeeded: value) | 0x80
            value >>= 7
            index += 1
        }
        storage[index] = UInt8(value)
    }

    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        start -= bytes.count
        UnsafeMutableRawPointer(storage + start).copyMemory(from: source, byteCount: bytes.count)
    }

    @inline(__always)
    mutating func tag(_ field: Int, _ wireType: UInt8) { raw(UInt64(field) << 3 | UInt64(wireType)) }

    mutating func varint(_ field: Int, _ value: UInt64) {
        raw(value)
        tag(field, 0)
    }

    mutating func fixed64(_ field: Int, _ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { raw($0) }
        tag(field, 1)
    }

    /// A `bytes` field of `value`'s eight bytes, big-endian (a span id).
    mutating func bigEndian(_ field: Int, _ value: UInt64) {
        withUnsafeBytes(of: value.bigEndian) { raw($0) }
        raw(8)
        tag(field, 2)
    }

    /// A `bytes` field of sixteen bytes, big-endian (a trace id).
    mutating func bigEndian(_ field: Int, high: UInt64, low: UInt64) {
        withUnsafeBytes(of: low.bigEndian) { raw($0) }
        withUnsafeBytes(of: high.bigEndian) { raw($0) }
        raw(16)
        tag(field, 2)
    }

    mutating func string(_ field: Int, _ value: String) {
        var value = value
        let count = value.withUTF8 { text in
            raw(UnsafeRawBufferPointer(text))
            return text.count
        }
        raw(UInt64(count))
        tag(field, 2)
    }

    mutating func string(_ field: Int, _ value: StaticString) {
        // (`withUTF8Buffer`, not `utf8CodeUnitCount`: a literal of one character has no pointer.)
        let count = value.withUTF8Buffer { text in
            raw(UnsafeRawBufferPointer(text))
            return text.count
        }
        raw(UInt64(count))
        tag(field, 2)
    }

    /// A nested message: `content` writes its fields (last first), then its length and tag go in front.
    mutating func message(_ field: Int, _ content: (inout ProtobufWriter) -> Void) {
        let end = count
        content(&self)
        raw(UInt64(count - end))
        tag(field, 2)
    }

    /// The bytes a varint of `value` takes.
    static func size(_ value: UInt64) -> Int {
        // One byte for each started group of seven significant bits (at least one).
        (64 - (value | 1).leadingZeroBitCount + 6) / 7
    }
}
