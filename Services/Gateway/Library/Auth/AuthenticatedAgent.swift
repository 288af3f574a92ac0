import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// Who made a request, once its bearer token is validated.
package struct AuthenticatedAgent: Sendable, Equatable {
    package var agent: String
    package var org: String
    package var user: String
    package var scopes: Set<String>
    package var tokenID: String
    /// Roles from the agent's identity provider (federated tokens), for policy.
    package var roles: [String] = []
    /// The client application it connected with, for policy rules on clients: the API key's id
    /// (presented raw, or exchanged for the token's `client_id`).
    package var client: String? = nil
}
