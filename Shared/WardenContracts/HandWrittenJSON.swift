import Foundation
import WardenMCP

/// A body whose JSON is written and read by hand when it travels in an envelope: the messages of
/// the paths every proxied call may take (a policy decision, a secret read), where Codable's encoder
/// and decoder cost more than the rest of the answer (19 µs to encode a decision's explanation, 10 µs
/// to decode a small reply, on the two-core machine of BENCHMARKS.md). The JSON is the document
/// Codable's encoding makes and is read as Codable's decoding reads it (tested field by field, and
/// every stored property must be written: tested by reflection); a document the hand-written reader
/// does not take (a date, a number written with a fraction, a duplicate key) goes to Codable, which
/// accepts or refuses it as before. Other bodies go through Codable.
public protocol HandWrittenJSON: Codable {
    func writeJSON(to json: inout JSONBytes)
    /// The body, or nil for a document Codable should read instead.
    init?(json: JSONValue)
}

extension EnvelopeCoding {
    /// A request envelope (`{"body":…,"v":1}`).
    public static func request<Body: Codable & Sendable>(_ body: Body) throws -> Data {
        guard let body = body as? any HandWrittenJSON else { return try encode(RequestEnvelope(body)) }
        var json = JSONBytes()
        json.beginObject()
        json.key("body")
        body.writeJSON(to: &json)
        json.field("v", wardenEnvelopeVersion)
        json.endObject()
        return json.data
    }

    /// A reply envelope (`{"ok":…,"v":1}` or `{"error":{…},"v":1}`).
    public static func reply<Body: Codable & Sendable>(_ reply: ReplyEnvelope<Body>) throws -> Data {
        var json = JSONBytes()
        json.beginObject()
        if let error = reply.error, reply.ok == nil {
            json.key("error")
            json.beginObject()
            json.field("code", error.code.rawValue)
            json.field("message", error.message)
            json.endObject()
        } else if reply.error == nil, let body = reply.ok as? any HandWrittenJSON {
            json.key("ok")
            body.writeJSON(to: &json)
        } else {
            return try encode(reply)
        }
        json.field("v", reply.v)
        json.endObject()
        return json.data
    }
}

extension EnvelopeCoding {
    /// A request envelope, read by hand for a `HandWrittenJSON` body.
    public static func decodeRequest<Body: Codable & Sendable>(_ type: Body.Type, from data: Data) throws -> RequestEnvelope<Body> {
        if let reader = Body.self as? any HandWrittenJSON.Type, let envelope = try? JSONFields(try? JSONParser().parse(data)),
            let version = try? envelope.int("v"), let body = reader.init(json: envelope.members.first { $0.key == "body" }?.value ?? .null) as? Body
        {
            return RequestEnvelope(v: version, body: body)
        }
        return try decode(RequestEnvelope<Body>.self, from: data)
    }

    /// A reply envelope, read by hand for a `HandWrittenJSON` body (its error replies too).
    public static func decodeReply<Body: Codable & Sendable>(_ type: Body.Type, from data: Data) throws -> ReplyEnvelope<Body> {
        if let reader = Body.self as? any HandWrittenJSON.Type, let envelope = try? JSONFields(try? JSONParser().parse(data)),
            let version = try? envelope.int("v")
        {
            let ok = envelope.members.first { $0.key == "ok" }?.value
            let error = envelope.members.first { $0.key == "error" }?.value
            switch (ok, error) {
            case (.some(let body), nil) where body != .null:
                if let body = reader.init(json: body) as? Body { return ReplyEnvelope(v: version, ok: body, error: nil) }
            case (nil, .some(let error)):
                if let fields = try? JSONFields(error), let code = try? fields.string("code"), let message = try? fields.string("message") {
                    return ReplyEnvelope(v: version, ok: nil, error: ServiceError(ServiceError.Code(rawValue: code), message))
                }
            default: break
            }
        }
        return try decode(ReplyEnvelope<Body>.self, from: data)
    }
}
