import WardenMCP

/// Why a call to a downstream MCP server failed. Always names the server; never carries a secret.
public struct DownstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Not running, exited, or could not be started.
        case unavailable
        /// No answer before the deadline.
        case timeout
        /// The server broke the protocol (oversized or malformed message); it was stopped.
        case protocolViolation = "protocol_violation"
        /// The server answered with a JSON-RPC error (in `serverError`).
        case serverError = "server_error"
    }

    public var code: Code
    public var server: String
    public var message: String
    public var serverError: JSONRPCError?

    public init(_ code: Code, server: String, _ message: String, serverError: JSONRPCError? = nil) {
        self.code = code
        self.server = server
        self.message = message
        self.serverError = serverError
    }

    public var description: String { "MCP server '\(server)': \(message)" }
}
