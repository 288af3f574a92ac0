import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WardenContracts
import WardenMCP
import WardenServiceKit

/// The operator's credential for admin endpoints, until issued admin tokens arrive (issue #4):
/// the bearer token configured in `WARDEN_ADMIN_TOKEN`. Only its SHA-256 digest is kept; a presented
/// token is compared digest to digest in constant time.
package struct AdminCredential: Sendable {
    let digest: [UInt8]

    package init(token: String) {
        digest = Array(SHA256.hash(data: Data(token.utf8)))
    }

    /// The value of an `Authorization` header matches.
    package func accepts(_ authorization: String?) -> Bool {
        guard let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return false }
        let presented = Array(SHA256.hash(data: Data(authorization.dropFirst(7).utf8)))
        return zip(presented, digest).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
