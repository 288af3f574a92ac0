import Foundation
import NIOCore

package struct ConfigurationProblem: Error, Sendable, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
