import Foundation

/// The version of the request/reply envelopes below. A service answers a request whose `v` it does
/// not know with `unsupported_version`, so that mixed versions during a rolling upgrade fail clearly.
public let wardenEnvelopeVersion = 1

/// What travels in a NATS request payload: `{"v":1,"body":{...}}`.
public struct RequestEnvelope<Body: Codable & Sendable>: Codable, Sendable {
    public var v: Int
    public var body: Body

    public init(_ body: Body) {
        self.v = wardenEnvelopeVersion
        self.body = body
    }

    public init(v: Int, body: Body) {
        self.v = v
        self.body = body
    }
}

/// What travels in a NATS reply payload: `{"v":1,"ok":{...}}` or `{"v":1,"error":{"code":...,"message":...}}`.
public struct ReplyEnvelope<Body: Codable & Sendable>: Codable, Sendable {
    public var v: Int
    public var ok: Body?
    public var error: ServiceError?

    public init(v: Int = wardenEnvelopeVersion, ok: Body?, error: ServiceError?) {
        self.v = v
        self.ok = ok
        self.error = error
    }

    public static func success(_ body: Body) -> Self { Self(v: wardenEnvelopeVersion, ok: body, error: nil) }
    public static func failure(_ error: ServiceError) -> Self { Self(v: wardenEnvelopeVersion, ok: nil, error: error) }

    /// The body, or the error the responder sent.
    public func get() throws(ServiceError) -> Body {
        if let error { throw error }
        guard let ok else { throw ServiceError(.internal, "reply carried neither a body nor an error") }
        return ok
    }
}

/// The typed error of every cross-service call: a stable code plus a message safe to show to a client.
/// Never put secrets, SQL or stack traces in `message`.
public struct ServiceError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    public struct Code: RawRepresentable, Codable, Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { rawValue }

        /// The request was malformed (bad JSON, missing field, invalid value).
        public static let badRequest: Code = "bad_request"
        /// The request's envelope version is not understood.
        public static let unsupportedVersion: Code = "unsupported_version"
        public static let notFound: Code = "not_found"
        public static let conflict: Code = "conflict"
        /// The caller is not allowed to do this.
        public static let forbidden: Code = "forbidden"
        /// The credentials presented are not valid (never says which part).
        public static let unauthorized: Code = "unauthorized"
        /// Too many attempts (failed sign-ins); the message says when to try again.
        public static let tooManyRequests: Code = "too_many_requests"
        /// A dependency (database, NATS, another service) is down; retrying later may work.
        public static let unavailable: Code = "unavailable"
        /// The deadline passed.
        public static let timeout: Code = "timeout"
        /// A bug or an unexpected state; details are only in the responder's logs.
        public static let `internal`: Code = "internal"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// One request/reply call: its subject, and the types of its request and reply bodies.
public struct ServiceEndpoint<Request: Codable & Sendable, Response: Codable & Sendable>: Sendable {
    public let service: WardenServiceName
    public let verb: String

    public init(_ service: WardenServiceName, _ verb: String) {
        self.service = service
        self.verb = verb
    }

    /// `warden.<service>.<verb>`.
    public var subject: String { "warden.\(service.rawValue).\(verb)" }
}

/// JSON coding shared by every envelope, so that every service reads what the others write.
public enum EnvelopeCoding {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// One encoder and one decoder for every envelope a process sends and reads: set up once, not
    /// per message (both are safe to share; their settings never change).
    public static func encode(_ value: some Encodable) throws -> Data { try sharedEncoder.encode(value) }

    public static func decode<Value: Decodable>(_ type: Value.Type, from data: Data) throws -> Value {
        try sharedDecoder.decode(type, from: data)
    }

    private static let sharedEncoder = encoder()
    private static let sharedDecoder = decoder()
}
