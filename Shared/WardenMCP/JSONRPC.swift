/// A JSON-RPC 2.0 request id: a string or a number (kept as its literal text).
public enum JSONRPCID: Sendable, Hashable, CustomStringConvertible {
    case number(String)
    case string(String)

    /// The id a JSON value names (a string or a number), as in `requestId` fields; nil otherwise.
    public init?(_ value: JSONValue) {
        switch value {
        case .string(let text): self = .string(text)
        case .number(let literal): self = .number(literal)
        default: return nil
        }
    }

    public var json: JSONValue {
        switch self {
        case .number(let literal): .number(literal)
        case .string(let value): .string(value)
        }
    }

    public var description: String {
        switch self {
        case .number(let literal): literal
        case .string(let value): "\"\(value)\""
        }
    }
}

/// A JSON-RPC error to send back: a code, a message safe for the client, optional data.
public struct JSONRPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public var description: String { "JSON-RPC error \(code): \(message)" }

    /// The error object as JSON: `{code, message, data}`.
    public var json: JSONValue {
        var body: [(key: String, value: JSONValue)] = [("code", .number(String(code))), ("message", .string(message))]
        if let data { body.append(("data", data)) }
        return .object(body)
    }

    public static func parseError(_ detail: String) -> Self { Self(code: Code.parseError, message: "Parse error: \(detail)") }
    public static func invalidRequest(_ detail: String) -> Self { Self(code: Code.invalidRequest, message: "Invalid request: \(detail)") }
    public static func methodNotFound(_ method: String) -> Self { Self(code: Code.methodNotFound, message: "Method not found: \(method)") }
    public static func invalidParams(_ detail: String) -> Self { Self(code: Code.invalidParams, message: "Invalid params: \(detail)") }
    public static func internalError(_ detail: String) -> Self { Self(code: Code.internalError, message: "Internal error: \(detail)") }
    /// 2026-07-28: the `Mcp-Method` / `Mcp-Name` headers disagree with the body.
    public static func headerMismatch(_ detail: String) -> Self { Self(code: Code.headerMismatch, message: "Header mismatch: \(detail)") }
    public static func resourceNotFound(_ uri: String) -> Self { Self(code: Code.resourceNotFound, message: "Resource not found: \(uri)") }
    public static let requestCancelled = Self(code: Code.requestCancelled, message: "Request cancelled")
    public static let sessionNotFound = Self(code: Code.sessionNotFound, message: "Session not found: initialize a new session")
    /// A request Warden relayed got no answer in time (a client asked by a server, say).
    public static func requestTimeout(_ detail: String) -> Self { Self(code: Code.requestTimeout, message: detail) }
    /// A downstream server failed the call or could not be reached; the message names it.
    public static func downstreamFailure(_ detail: String) -> Self { Self(code: Code.internalError, message: detail) }
    /// A request the gateway cannot pass on (no single client to ask, a missing capability).
    public static func notRelayed(_ detail: String) -> Self { Self(code: Code.methodNotFound, message: detail) }

    /// Every JSON-RPC error code Warden answers with, named once: JSON-RPC 2.0's own, then MCP's.
    public enum Code {
        public static let parseError = -32700
        public static let invalidRequest = -32600
        public static let methodNotFound = -32601
        public static let invalidParams = -32602
        public static let internalError = -32603
        /// MCP: the session is unknown or expired (HTTP 404); the client initializes again.
        public static let sessionNotFound = -32001
        /// MCP: no answer in time (the SDKs' request timeout shares the session code's number).
        public static let requestTimeout = -32001
        public static let resourceNotFound = -32002
        /// Warden: a credential the call needs is not configured (or not available).
        public static let credentialMissing = -32030
        /// The policy denies the call (it says nothing about whether the tool exists).
        public static let policyDenied = -32040
        /// The policy could not be asked in time: nothing ran (fail closed).
        public static let policyUnavailable = -32041
        /// The policy allows the call once people approve it.
        public static let approvalRequired = -32042
        /// A rate limit or quota of the policy refused the call; `data.retryAfterSeconds` says when to try again.
        public static let rateLimited = -32043
        /// The result was larger than the policy lets the call return (`maxResultBytes`): withheld.
        public static let resultTooLarge = -32044
        /// Audit cannot record the request (its spool is full): nothing ran (fail closed).
        public static let auditUnavailable = -32045
        /// The approvals service could not be reached: a call that needs approval does not run.
        public static let approvalsUnavailable = -32046
        /// 2026-07-28: a header disagrees with the body.
        public static let headerMismatch = -32020
        /// 2026-07-28: a required header is missing.
        public static let missingHeader = -32021
        /// 2026-07-28: the protocol version is not supported (the error lists the supported ones).
        public static let unsupportedProtocolVersion = -32022
        public static let requestCancelled = -32800
    }
}

/// One JSON-RPC message, with the raw value kept for lossless forwarding.
public enum JSONRPCMessage: Sendable, Equatable {
    case request(id: JSONRPCID, method: String, params: JSONValue?)
    case notification(method: String, params: JSONValue?)
    case result(id: JSONRPCID, result: JSONValue)
    case error(id: JSONRPCID?, JSONRPCError)

    public var method: String? {
        switch self {
        case .request(_, let method, _), .notification(let method, _): method
        default: nil
        }
    }

    public var id: JSONRPCID? {
        switch self {
        case .request(let id, _, _), .result(let id, _): id
        case .error(let id, _): id
        case .notification: nil
        }
    }

    /// Reads one message. Errors carry the JSON-RPC code to answer with.
    public static func parse(_ value: JSONValue) throws(JSONRPCError) -> JSONRPCMessage {
        guard case .object = value else { throw .invalidRequest("a message must be a JSON object") }
        guard value["jsonrpc"] == .string("2.0") else { throw .invalidRequest("\"jsonrpc\" must be \"2.0\"") }
        let id = try parseID(value["id"])
        if let methodValue = value["method"] {
            guard case .string(let method) = methodValue, !method.isEmpty else { throw .invalidRequest("\"method\" must be a non-empty string") }
            let params = value["params"]
            if let params {
                switch params {
                case .object, .array: break
                default: throw .invalidRequest("\"params\" must be an object or an array")
                }
            }
            if let id { return .request(id: id, method: method, params: params) }
            guard value["id"] == nil else { throw .invalidRequest("\"id\" must be a string or a number") }
            return .notification(method: method, params: params)
        }
        if let result = value["result"] {
            guard let id else { throw .invalidRequest("a response needs an \"id\"") }
            guard value["error"] == nil else { throw .invalidRequest("a response has either \"result\" or \"error\"") }
            return .result(id: id, result: result)
        }
        if let error = value["error"] {
            guard case .number(let codeText) = error["code"] ?? .null, let code = Int(codeText),
                case .string(let message) = error["message"] ?? .null
            else { throw .invalidRequest("\"error\" needs an integer \"code\" and a string \"message\"") }
            return .error(id: id, JSONRPCError(code: code, message: message, data: error["data"]))
        }
        throw .invalidRequest("a message needs \"method\", \"result\" or \"error\"")
    }

    private static func parseID(_ value: JSONValue?) throws(JSONRPCError) -> JSONRPCID? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return .string(text)
        case .number(let literal)?:
            guard !literal.contains("."), !literal.contains("e"), !literal.contains("E") else {
                throw .invalidRequest("a numeric \"id\" must be an integer")
            }
            return .number(literal)
        default: throw .invalidRequest("\"id\" must be a string or a number")
        }
    }

    /// The message as JSON.
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("jsonrpc", "2.0")]
        switch self {
        case .request(let id, let method, let params):
            members.append(("id", id.json))
            members.append(("method", .string(method)))
            if let params { members.append(("params", params)) }
        case .notification(let method, let params):
            members.append(("method", .string(method)))
            if let params { members.append(("params", params)) }
        case .result(let id, let result):
            members.append(("id", id.json))
            members.append(("result", result))
        case .error(let id, let error):
            members.append(("id", id?.json ?? .null))
            members.append(("error", error.json))
        }
        return .object(members)
    }
}
