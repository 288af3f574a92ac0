import Foundation
import NIOCore

public struct ConfigurationProblem: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
