import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// JSON written by hand into bytes, for the documents Warden writes on hot paths (audit events,
/// the envelopes of a policy decision and a secret read): the document `EnvelopeCoding`'s encoder
/// makes (keys in another order; dates ISO 8601 to the second, as its `.iso8601` strategy writes
/// them; nil fields left out), at a fraction of Codable's cost. Written in order: each `key` adds
/// the comma its position needs.
public struct JSONBytes {
    public private(set) var bytes: [UInt8] = []
    /// Whether the next key or element follows another in its object or array.
    private var followsAnother = false

    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    public var data: Data { Data(bytes) }

    /// Writes onto the end of `out`, in its storage (a writer reusing one buffer keeps its capacity).
    public static func append(to out: inout [UInt8], _ write: (inout JSONBytes) -> Void) {
        var json = JSONBytes(capacity: 0)
        swap(&json.bytes, &out)
        write(&json)
        swap(&json.bytes, &out)
    }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        followsAnother = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        followsAnother = true
    }

    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        followsAnother = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        followsAnother = true
    }

    /// A member's name; its value follows.
    public mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        followsAnother = false
    }

    /// A member's name that is not known when compiling (a dictionary's key).
    public mutating func key(_ name: String) {
        string(name)
        bytes.append(UInt8(ascii: ":"))
        followsAnother = false
    }

    /// A string value: quotes, backslashes and control characters escaped, the rest as UTF-8.
    public mutating func string(_ value: String) {
        separate()
        Self.appendString(value, to: &bytes)
        followsAnother = true
    }

    public mutating func number(_ value: Int) {
        separate()
        bytes.append(contentsOf: String(value).utf8)
        followsAnother = true
    }

    public mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
        followsAnother = true
    }

    public mutating func date(_ value: Date) {
        string(Self.iso8601(value))
    }

    public mutating func strings(_ values: [String]) {
        beginArray()
        for value in values { string(value) }
        endArray()
    }

    // Members whose nil value is left out, as Codable's synthesized encoding leaves it out.

    public mutating func field(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        key(name)
        string(value)
    }

    public mutating func field(_ name: StaticString, _ value: Int?) {
        guard let value else { return }
        key(name)
        number(value)
    }

    public mutating func field(_ name: StaticString, _ value: Bool?) {
        guard let value else { return }
        key(name)
        bool(value)
    }

    public mutating func field(_ name: StaticString, _ value: Date?) {
        guard let value else { return }
        key(name)
        date(value)
    }

    public mutating func field(_ name: StaticString, _ values: [String]?) {
        guard let values else { return }
        key(name)
        strings(values)
    }

    public mutating func field(_ name: StaticString, _ values: [String: String]?) {
        guard let values else { return }
        key(name)
        beginObject()
        for (name, value) in values {
            key(name)
            string(value)
        }
        endObject()
    }

    private mutating func separate() {
        if followsAnother { bytes.append(UInt8(ascii: ",")) }
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    static func appendString(_ value: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { bytes in
            var start = 0
            for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                out.append(contentsOf: bytes[start..<index])
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                default:
                    out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                    out.append(hexDigits[Int(byte >> 4)])
                    out.append(hexDigits[Int(byte & 0x0F)])
                }
            }
            out.append(contentsOf: bytes[start...])
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `2026-11-30T08:00:00Z`: UTC, whole seconds, as `.iso8601` writes it (Foundation rounds the
    /// time since its reference date down, so this does too); years outside 1600–9999 are left to
    /// Foundation.
    static func iso8601(_ date: Date) -> String {
        let reference = date.timeIntervalSinceReferenceDate
        guard reference.isFinite, abs(reference) < 4e11 else { return date.formatted(Date.ISO8601FormatStyle()) }
        var seconds = time_t(Int64(reference.rounded(.down)) + 978_307_200)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let year = Int(parts.tm_year) + 1900
        // Before the Gregorian calendar (1582) Foundation writes Julian dates.
        guard (1600...9999).contains(year) else { return date.formatted(Date.ISO8601FormatStyle()) }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let yearText = String(repeating: "0", count: 4 - String(year).count) + String(year)
        return "\(yearText)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
