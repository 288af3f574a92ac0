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
public struct AuthenticatedAgent: Sendable, Equatable {
    public var agent: String
    public var org: String
    public var user: String
    public var scopes: Set<String>
    public var tokenID: String
    /// Roles from the agent's identity provider (federated tokens), for policy.
    public var roles: [String] = []
}
