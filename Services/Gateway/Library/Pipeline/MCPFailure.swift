import HTTPTypes
import Hummingbird
import NIOCore
import WardenMCP

/// Why the MCP endpoint refuses a request before any server sees it: an HTTP status and the JSON-RPC
/// error to send, rendered once, by `response`. Stages throw it; nothing else builds error answers.
struct MCPFailure: Error, Sendable {
    var status: HTTPResponse.Status
    var error: JSONRPCError
    var id: JSONRPCID?
    /// Extra headers (`Allow`, say).
    var headers: HTTPFields = [:]
    /// An answer the authentication stage made (its `WWW-Authenticate` challenge), sent as it is.
    var prepared: Response?

    init(_ status: HTTPResponse.Status, _ error: JSONRPCError, id: JSONRPCID? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.error = error
        self.id = id
        self.headers = headers
    }

    /// The authenticator's refusal (RFC 6750 challenge), passed through unchanged.
    static func refused(_ response: Response) -> Self {
        var failure = Self(response.status, .invalidRequest("unauthorized"))
        failure.prepared = response
        return failure
    }

    var response: Response {
        if let prepared { return prepared }
        var response = Self.reply(.error(id: id, error), status: status)
        for field in headers { response.headers.append(field) }
        return response
    }

    /// A JSON-RPC message as the body of an HTTP answer.
    static func reply(_ message: JSONRPCMessage, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: message.json.serialized()))
        )
    }
}
