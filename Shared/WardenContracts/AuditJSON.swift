import Foundation

/// The JSON of the audit events every call produces and of the records announced once stored,
/// written by hand: the same document `EnvelopeCoding`'s encoder makes (keys in another order; dates
/// ISO 8601 to the second, as its `.iso8601` strategy writes them; nil fields left out), at a
/// fraction of its cost. Codable's encoder was a large part of what recording every call cost the
/// gateway and the audit service (BENCHMARKS.md, "Auditing"). What is written here must decode, by
/// Codable and by `AuditEventReader`, to the event it was written from (tested field by field).
public enum AuditJSON {
    /// One event as one JSON object (no newline).
    public static func write(_ event: AuditEvent, to out: inout [UInt8]) {
        JSONBytes.append(to: &out) { json in write(event, to: &json) }
    }

    static func write(_ event: AuditEvent, to json: inout JSONBytes) {
        json.beginObject()
        json.field("id", event.id)
        json.field("time", event.time)
        json.field("service", event.service.rawValue)
        json.field("action", event.action)
        json.field("outcome", event.outcome.rawValue)
        json.field("org", event.org)
        json.field("actor", event.actor)
        json.field("target", event.target)
        json.field("detail", event.detail)
        json.field("requestID", event.requestID)
        if let call = event.call {
            json.key("call")
            json.beginObject()
            json.field("method", call.method)
            json.field("name", call.name)
            json.field("server", call.server)
            json.field("agent", call.agent)
            json.field("user", call.user)
            json.field("client", call.client)
            json.field("clientAddress", call.clientAddress)
            json.field("session", call.session)
            json.field("decision", call.decision)
            json.field("result", call.result)
            json.field("errorCode", call.errorCode)
            json.field("arguments", call.arguments)
            json.field("credentials", call.credentials)
            json.field("latencyMicroseconds", Int(call.latencyMicroseconds))
            json.field("requestBytes", call.requestBytes)
            json.field("responseBytes", call.responseBytes)
            json.endObject()
        }
        json.endObject()
    }

    /// A stored record as announced to SIEMs.
    public static func data(_ record: AuditChainedRecord) -> Data {
        var json = JSONBytes(capacity: record.body.utf8.count + 200)
        json.beginObject()
        json.field("position", Int(record.position))
        json.field("previousHash", record.previousHash)
        json.field("hash", record.hash)
        json.field("body", record.body)
        json.endObject()
        return json.data
    }

    static func iso8601(_ date: Date) -> String { JSONBytes.iso8601(date) }
}
