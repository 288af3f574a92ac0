import Foundation
import Logging
import PostgresNIO
import WardenServiceKit

/// Why a registry change was refused.
package struct RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Code: String, Sendable {
        case invalid
        case notFound = "not_found"
        case conflict
        case unavailable
    }

    package var code: Code
    package var description: String

    package init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
