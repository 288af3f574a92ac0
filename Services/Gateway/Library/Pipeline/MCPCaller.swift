import Logging
import WardenContracts
import WardenMCP

/// Who is asking, as far as the proxy knows: the protocol era and session of the request, and the
/// authenticated agent.
package struct MCPCaller: Sendable, Equatable {
    package var protocolVersion: String
    /// Nil for stateless (2026-07-28) requests.
    package var sessionID: String?
    package var clientName: String?
    /// What the client can answer when a server asks (sampling, elicitation, roots).
    package var clientCapabilities: Set<String>
    /// The authenticated agent; nil when the gateway allows anonymous requests.
    package var agent: AuthenticatedAgent?
    /// The agent's org: which org-owned servers it sees (nil: shared servers only).
    package var org: String? { agent?.org }

    package init(protocolVersion: String, sessionID: String?, clientName: String?, clientCapabilities: Set<String> = []) {
        self.protocolVersion = protocolVersion
        self.sessionID = sessionID
        self.clientName = clientName
        self.clientCapabilities = clientCapabilities
    }
}
