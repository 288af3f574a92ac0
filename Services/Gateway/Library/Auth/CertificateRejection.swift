import Foundation
import NIOCore

public struct CertificateRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
