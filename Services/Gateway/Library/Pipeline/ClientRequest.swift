import WardenMCP

/// One client request on its way through the pipeline: what the client asked, and who asks.
struct ClientRequest: Sendable {
    var id: JSONRPCID
    var method: String
    var params: JSONValue?
    var caller: MCPCaller
    /// The address the request came from (policy conditions on the client's network).
    var clientAddress: String? = nil

    /// The key a cancellation names this request by.
    var key: InFlightCalls.RequestKey { InFlightCalls.RequestKey(session: caller.sessionID, id: id) }
}
