import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WardenIdentity
import WardenNATS

/// One revocation: a token (by id), every token a subject was issued until now (an agent, a service
/// account, or a user's admin tokens: whatever a token's `sub` names), or an API key presented raw on `/mcp`.
package struct Revocation: Codable, Sendable, Equatable {
    package enum Kind: String, Codable, Sendable { case token, subject, apiKey = "api_key" }
    package var kind: Kind
    package var id: String
    /// Seconds since 1970: a subject's tokens issued at or before this are revoked.
    package var at: Int64

    package init(kind: Kind, id: String, at: Int64) {
        self.kind = kind
        self.id = id
        self.at = at
    }
}
