import WardenMCP

/// A connection to one downstream MCP server, whatever carries it (stdio, Streamable HTTP, legacy
/// HTTP+SSE).
package protocol DownstreamTransport: Sendable {
    var serverID: String { get }
    /// Sends a request and waits for its result; throws `DownstreamError`.
    func request(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue
    /// Sends a message that expects no reply here: a notification, or the answer to a request the
    /// server made.
    func send(_ message: JSONRPCMessage) async throws
    /// Notifications and requests the server sends on its own.
    var incoming: AsyncStream<JSONRPCMessage> { get }
    /// Tells the server that the gateway no longer waits for request `id` (the client cancelled, or
    /// the deadline passed). Best effort and without waiting: a server that is gone needs no telling.
    func cancelled(_ id: Int, reason: String)
}

extension DownstreamTransport {
    package func notify(_ method: String, params: JSONValue?) async throws {
        try await send(.notification(method: method, params: params))
    }
}

extension JSONRPCMessage {
    /// `notifications/cancelled` for the gateway's request `id`.
    static func cancellation(of id: Int, reason: String) -> JSONRPCMessage {
        .notification(method: "notifications/cancelled", params: .object([("requestId", .number(String(id))), ("reason", .string(reason))]))
    }
}
