import Foundation

/// One MCP request through the gateway, as the audit record keeps it. Arguments are kept only for a
/// call a rule allowed, with the fields the policy says to redact replaced by `"[redacted]"` (and
/// then a server's error message is not kept either), cut at 64 KiB. Agents never hold credential
/// values, so their arguments cannot carry them.
public struct AuditCall: Codable, Sendable, Equatable {
    public var method: String
    /// The namespaced tool or prompt name, or the resource URI.
    public var name: String?
    public var server: String?
    public var agent: String?
    public var user: String?
    public var client: String?
    public var clientAddress: String?
    public var session: String?
    /// `allow`, `deny`, `approve` (waiting), `unavailable`, or nil when nothing was decided (listings).
    public var decision: String?
    /// `success`, `tool_error` (the tool answered with isError), `protocol_error` (a JSON-RPC error).
    public var result: String
    public var errorCode: Int?
    public var arguments: String?
    /// The credentials the server the call went to is given: references (`secret://github/token`,
    /// `oauth://github`), never values.
    public var credentials: [String]?
    public var latencyMicroseconds: Int64
    public var requestBytes: Int?
    public var responseBytes: Int?

    public init(
        method: String, name: String?, server: String?, agent: String?, user: String?, client: String?, clientAddress: String?, session: String?,
        decision: String?, result: String, errorCode: Int?, arguments: String?, credentials: [String]? = nil, latencyMicroseconds: Int64,
        requestBytes: Int?, responseBytes: Int?
    ) {
        self.method = method
        self.name = name
        self.server = server
        self.agent = agent
        self.user = user
        self.client = client
        self.clientAddress = clientAddress
        self.session = session
        self.decision = decision
        self.result = result
        self.errorCode = errorCode
        self.arguments = arguments
        self.credentials = credentials
        self.latencyMicroseconds = latencyMicroseconds
        self.requestBytes = requestBytes
        self.responseBytes = responseBytes
    }
}
