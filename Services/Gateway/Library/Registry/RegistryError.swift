import Foundation
import Logging
import PostgresNIO
import WardenServiceKit

/// Why a registry change was refused.
public struct RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case invalid
        case notFound = "not_found"
        case conflict
        case unavailable
    }

    public var code: Code
    public var description: String

    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
