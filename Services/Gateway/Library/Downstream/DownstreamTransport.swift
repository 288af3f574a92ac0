import WardenMCP

/// A connection to one downstream MCP server, whatever carries it (stdio, Streamable HTTP, legacy
/// HTTP+SSE).
public protocol DownstreamTransport: Sendable {
    var serverID: String { get }
    /// Sends a request and waits for its result; throws `DownstreamError`.
    func request(_ method: String, params: JSONValue?, timeout: Duration) async throws -> JSONValue
    /// Sends a notification.
    func notify(_ method: String, params: JSONValue?) async throws
    /// Notifications and requests the server sends on its own.
    var incoming: AsyncStream<JSONRPCMessage> { get }
}

/// A transport with a life a supervisor can watch: `serve()` runs until the connection is gone (the
/// process exited, the event stream closed, the session expired) and says why; `stop` ends it.
public protocol DownstreamConnection: DownstreamTransport {
    func serve() async throws -> String
    func stop(grace: Duration) async
}

extension StdioServerConnection: DownstreamConnection {
    public func serve() async throws -> String {
        "the process exited (\(try await run()))"
    }
}
