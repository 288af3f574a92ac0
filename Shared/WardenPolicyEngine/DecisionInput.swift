import Foundation
import WardenMCP

/// Everything a decision may look at: who calls (from the agent's token and the principal store),
/// from where, which tool with which arguments, and when.
package struct DecisionInput: Sendable, Equatable {
    package var org: String
    package var agent: String
    package var agentClass: String
    /// The user the agent acts for.
    package var user: String
    /// The user's role in the org and the roles of a federated token.
    package var roles: Set<String>
    package var scopes: Set<String>
    /// The OAuth client or API key the agent connected with, when known.
    package var client: String?
    /// The client's IP address as the gateway saw it.
    package var clientAddress: String?
    /// Claims of the token and attributes of the user (`customer_id`).
    package var claims: [String: JSONValue]
    /// Whether `claims` are what the caller has (false: nobody said; conditions on claims are
    /// then unknown, which denies for allow rules and holds for deny rules).
    package var claimsKnown: Bool
    /// What is asked for: a tool, a prompt or a resource (its rules' `tools`, `prompts` or `resources`).
    package var kind: ItemKind = .tool
    /// The namespaced name: `server__tool`, `server__prompt`, or a resource's `server+uri`.
    package var tool: String
    package var arguments: JSONValue
    package var time: Date

    package init(
        org: String, agent: String, agentClass: String, user: String, roles: Set<String> = [], scopes: Set<String> = [], client: String? = nil,
        clientAddress: String? = nil, claims: [String: JSONValue] = [:], claimsKnown: Bool = true, tool: String,
        arguments: JSONValue = .object([]), time: Date = Date()
    ) {
        self.claimsKnown = claimsKnown
        self.org = org
        self.agent = agent
        self.agentClass = agentClass
        self.user = user
        self.roles = roles
        self.scopes = scopes
        self.client = client
        self.clientAddress = clientAddress
        self.claims = claims
        self.tool = tool
        self.arguments = arguments
        self.time = time
    }
}
