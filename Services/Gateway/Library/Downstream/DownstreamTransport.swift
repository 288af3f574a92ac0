import WardenMCP

/// A connection to one downstream MCP server, whatever carries it (stdio today; Streamable HTTP next).
public protocol DownstreamTransport: Sendable {
    var serverID: String { get }
    /// Sends a request and waits for its result; throws `DownstreamError`.
    func request(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue
    /// Sends a notification.
    func notify(_ method: String, params: JSONValue?) throws
    /// Notifications and requests the server sends on its own.
    var incoming: AsyncStream<JSONRPCMessage> { get }
}

extension StdioServerConnection: DownstreamTransport {}
