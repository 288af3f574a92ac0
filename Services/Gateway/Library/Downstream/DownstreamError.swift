import WardenMCP

/// Why a call to a downstream MCP server failed. Always names the server; never carries a secret.
package struct DownstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Code: String, Sendable {
        /// Not running, exited, or could not be started.
        case unavailable
        /// No answer before the deadline.
        case timeout
        /// The server broke the protocol (oversized or malformed message); it was stopped.
        case protocolViolation = "protocol_violation"
        /// The server answered with a JSON-RPC error (in `serverError`).
        case serverError = "server_error"
        /// A credential the server needs could not be resolved (missing, deleted, the vault down).
        case credentials
    }

    package var code: Code
    package var server: String
    package var message: String
    package var serverError: JSONRPCError?

    package init(_ code: Code, server: String, _ message: String, serverError: JSONRPCError? = nil) {
        self.code = code
        self.server = server
        self.message = message
        self.serverError = serverError
    }

    package var description: String { "MCP server '\(server)': \(message)" }
}
