import Foundation

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
        // One byte at a time: an array literal here was a heap allocation a key.
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
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
        separate()
        bytes.append(UInt8(ascii: "\""))
        Self.appendISO8601(value, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
        followsAnother = true
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
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                // As Foundation's encoder writes them (JSON's other two short escapes).
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                default:
                    out.append(UInt8(ascii: "u"))
                    out.append(UInt8(ascii: "0"))
                    out.append(UInt8(ascii: "0"))
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
    /// Foundation (before the Gregorian calendar, 1582, it writes Julian dates).
    static func iso8601(_ date: Date) -> String {
        var text: [UInt8] = []
        appendISO8601(date, to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Writes `iso8601(date)` onto `out`, digit by digit (interpolating its parts into a string, on
    /// `gmtime_r`, cost about 5,800 instructions an audit event).
    static func appendISO8601(_ date: Date, to out: inout [UInt8]) {
        let reference = date.timeIntervalSinceReferenceDate
        guard reference.isFinite, abs(reference) < 4e11 else { return out.append(contentsOf: date.formatted(Date.ISO8601FormatStyle()).utf8) }
        let seconds = Int64(reference.rounded(.down)) + 978_307_200
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let second = seconds - days * 86_400
        // The proleptic Gregorian date of a day since 1970-01-01 (Howard Hinnant's `civil_from_days`):
        // 400-year eras of 146,097 days, years counted from 1 March so that leap days fall last.
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        guard (1600...9999).contains(year) else { return out.append(contentsOf: date.formatted(Date.ISO8601FormatStyle()).utf8) }
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        digits(year, 4)
        out.append(UInt8(ascii: "-"))
        digits(month, 2)
        out.append(UInt8(ascii: "-"))
        digits(day, 2)
        out.append(UInt8(ascii: "T"))
        digits(second / 3_600, 2)
        out.append(UInt8(ascii: ":"))
        digits(second / 60 % 60, 2)
        out.append(UInt8(ascii: ":"))
        digits(second % 60, 2)
        out.append(UInt8(ascii: "Z"))
    }
}
