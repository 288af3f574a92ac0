import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The JSON of the audit events every call produces and of the records announced once stored,
/// written by hand: the same document `EnvelopeCoding`'s encoder makes (keys in another order; dates
/// ISO 8601 to the second, as its `.iso8601` strategy writes them; nil fields left out), at a
/// fraction of its cost. Codable's encoder was a large part of what recording every call cost the
/// gateway and the audit service (BENCHMARKS.md, "Auditing"). Decoding stays Codable: what is
/// written here must decode to the event it was written from (tested field by field).
public enum AuditJSON {
    /// One event as one JSON object (no newline).
    public static func write(_ event: AuditEvent, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        field("id", event.id, &out, first: true)
        field("time", event.time, &out)
        field("service", event.service.rawValue, &out)
        field("action", event.action, &out)
        field("outcome", event.outcome.rawValue, &out)
        field("org", event.org, &out)
        field("actor", event.actor, &out)
        field("target", event.target, &out)
        field("detail", event.detail, &out)
        field("requestID", event.requestID, &out)
        if let call = event.call {
            key("call", &out)
            out.append(UInt8(ascii: "{"))
            field("method", call.method, &out, first: true)
            field("name", call.name, &out)
            field("server", call.server, &out)
            field("agent", call.agent, &out)
            field("user", call.user, &out)
            field("client", call.client, &out)
            field("clientAddress", call.clientAddress, &out)
            field("session", call.session, &out)
            field("decision", call.decision, &out)
            field("result", call.result, &out)
            if let code = call.errorCode { number("errorCode", Int64(code), &out) }
            field("arguments", call.arguments, &out)
            if let credentials = call.credentials {
                key("credentials", &out)
                out.append(UInt8(ascii: "["))
                for (index, credential) in credentials.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    string(credential, &out)
                }
                out.append(UInt8(ascii: "]"))
            }
            number("latencyMicroseconds", call.latencyMicroseconds, &out)
            if let bytes = call.requestBytes { number("requestBytes", Int64(bytes), &out) }
            if let bytes = call.responseBytes { number("responseBytes", Int64(bytes), &out) }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    /// A stored record as announced to SIEMs.
    public static func data(_ record: AuditChainedRecord) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(record.body.utf8.count + 200)
        out.append(UInt8(ascii: "{"))
        number("position", record.position, &out, first: true)
        field("previousHash", record.previousHash, &out)
        field("hash", record.hash, &out)
        field("body", record.body, &out)
        out.append(UInt8(ascii: "}"))
        return Data(out)
    }

    static func key(_ name: StaticString, _ out: inout [UInt8], first: Bool = false) {
        if !first { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    static func field(_ name: StaticString, _ value: String?, _ out: inout [UInt8], first: Bool = false) {
        guard let value else { return }
        key(name, &out, first: first)
        string(value, &out)
    }

    static func field(_ name: StaticString, _ date: Date, _ out: inout [UInt8]) {
        key(name, &out)
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: iso8601(date).utf8)
        out.append(UInt8(ascii: "\""))
    }

    static func number(_ name: StaticString, _ value: Int64, _ out: inout [UInt8], first: Bool = false) {
        key(name, &out, first: first)
        out.append(contentsOf: String(value).utf8)
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    /// A JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8.
    static func string(_ value: String, _ out: inout [UInt8]) {
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
