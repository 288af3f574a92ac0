import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Synchronization
import WardenContracts
import WardenIdentity
import WardenServiceKit

/// Who is calling the admin API: the platform operator (`WARDEN_ADMIN_TOKEN`, or an admin key
/// such as the one the bootstrap made) or an org's admin (a token the vault signed for the admin audience,
/// issued to an owner or admin of that org). An org admin sees and changes its own org only.
package enum AdminPrincipal: Sendable, Equatable {
    case platform
    case org(String, user: String)

    package func mayManage(org: String) -> Bool {
        switch self {
        case .platform: true
        case .org(let own, _): own == org
        }
    }

    package var isPlatform: Bool { self == .platform }
}
