import Foundation
import WardenMCP

/// Reads an audit event's JSON by hand (through `JSONParser`), at a fraction of Codable's cost:
/// decoding each event with Foundation's `JSONDecoder` was about a fifth of the audit service's CPU
/// (BENCHMARKS.md, "Audit: ingestion, verification, …"). Ingestion reads every line here; it accepts
/// what Codable's decoding of `AuditEvent` accepts (dates as `.iso8601` reads them; unknown keys
/// ignored; `null` as absent for optional fields; integers written with a fraction or an exponent
/// when exact), tested side by side, except what `JSONParser` refuses on purpose: a key twice (two
/// readers could disagree on which one counts; Codable takes the first), a comma before a closing
/// brace or bracket, a malformed string or number inside a member no field reads (Codable does not
/// look at those), nesting deeper than 64, a byte order mark. No Warden service writes any of them.
/// (Integers of 2^53 or more written with a fraction or an exponent may read a unit apart: none is
/// an indexed column.) Verification, query and export read stored bodies with `stored(_:)`, which
/// falls back to Codable, so that a record an older version stored is never reported altered.
public enum AuditEventReader {
    public struct Unreadable: Error, Sendable, Equatable, CustomStringConvertible {
        public var reason: String
        public var description: String { "not an audit event: \(reason)" }
    }

    /// A stored record's body: read here, else as versions before this reader read it (Codable).
    public static func stored(_ body: String) -> AuditEvent? {
        if let event = try? event(from: body.utf8) { return event }
        return try? EnvelopeCoding.decode(AuditEvent.self, from: Data(body.utf8))
    }

    public static func event(from bytes: some Collection<UInt8>) throws(Unreadable) -> AuditEvent {
        let value: JSONValue
        do { value = try JSONParser().parse(bytes) } catch { throw Unreadable(reason: error.description) }
        guard case .object(let members) = value else { throw Unreadable(reason: "not an object") }
        let fields = Fields(members)
        var event = AuditEvent(
            id: try fields.string("id"), time: try fields.date("time"),
            service: try fields.enumeration("service", WardenServiceName.self), action: try fields.string("action"),
            outcome: try fields.enumeration("outcome", AuditEvent.Outcome.self), org: try fields.optionalString("org"),
            actor: try fields.string("actor"), target: try fields.string("target"), detail: try fields.string("detail"),
            requestID: try fields.optionalString("requestID"))
        if let call = fields["call"] {
            guard case .object(let callMembers) = call else { throw Unreadable(reason: "call is not an object") }
            let call = Fields(callMembers)
            event.call = AuditCall(
                method: try call.string("method"), name: try call.optionalString("name"), server: try call.optionalString("server"),
                agent: try call.optionalString("agent"), user: try call.optionalString("user"), client: try call.optionalString("client"),
                clientAddress: try call.optionalString("clientAddress"), session: try call.optionalString("session"),
                decision: try call.optionalString("decision"), result: try call.string("result"), errorCode: try call.optionalInteger("errorCode"),
                arguments: try call.optionalString("arguments"), credentials: try call.optionalStrings("credentials"),
                latencyMicroseconds: try call.integer("latencyMicroseconds"), requestBytes: try call.optionalInteger("requestBytes"),
                responseBytes: try call.optionalInteger("responseBytes"))
        }
        return event
    }

    static let dates = Date.ISO8601FormatStyle()

    /// An object's members by key; a `null` member is absent.
    private struct Fields {
        let members: [(key: String, value: JSONValue)]

        init(_ members: [(key: String, value: JSONValue)]) { self.members = members }

        subscript(key: String) -> JSONValue? {
            for member in members where member.key == key {
                if case .null = member.value { return nil }
                return member.value
            }
            return nil
        }

        func optionalString(_ key: String) throws(Unreadable) -> String? {
            guard let value = self[key] else { return nil }
            guard case .string(let text) = value else { throw Unreadable(reason: "\(key) is not a string") }
            return text
        }

        func string(_ key: String) throws(Unreadable) -> String {
            guard let text = try optionalString(key) else { throw Unreadable(reason: "\(key) is missing") }
            return text
        }

        func optionalInteger<Integer: FixedWidthInteger>(_ key: String, as _: Integer.Type = Integer.self) throws(Unreadable) -> Integer? {
            guard let value = self[key] else { return nil }
            guard case .number(let text) = value else { throw Unreadable(reason: "\(key) is not a number") }
            if let exact = Integer(text) { return exact }
            // As Foundation does: a number with a fraction or an exponent counts when it is a whole number in range.
            guard let double = Double(text), let exact = Integer(exactly: double) else { throw Unreadable(reason: "\(key) is not an integer") }
            return exact
        }

        func integer<Integer: FixedWidthInteger>(_ key: String) throws(Unreadable) -> Integer {
            guard let number: Integer = try optionalInteger(key) else { throw Unreadable(reason: "\(key) is missing") }
            return number
        }

        func optionalStrings(_ key: String) throws(Unreadable) -> [String]? {
            guard let value = self[key] else { return nil }
            guard case .array(let elements) = value else { throw Unreadable(reason: "\(key) is not an array") }
            var strings: [String] = []
            strings.reserveCapacity(elements.count)
            for element in elements {
                guard case .string(let text) = element else { throw Unreadable(reason: "\(key) holds something not a string") }
                strings.append(text)
            }
            return strings
        }

        func date(_ key: String) throws(Unreadable) -> Date {
            let text = try string(key)
            // What JSONDecoder's `.iso8601` strategy reads.
            guard let date = try? AuditEventReader.dates.parse(text) else { throw Unreadable(reason: "\(key) is not an ISO 8601 date") }
            return date
        }

        func enumeration<Value: RawRepresentable<String>>(_ key: String, _: Value.Type) throws(Unreadable) -> Value {
            guard let value = Value(rawValue: try string(key)) else { throw Unreadable(reason: "\(key) is not a known value") }
            return value
        }
    }
}
