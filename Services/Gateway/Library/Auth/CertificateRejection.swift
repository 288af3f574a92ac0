import Foundation
import NIOCore

package struct CertificateRejection: Error, Sendable, Equatable, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
