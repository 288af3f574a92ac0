import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WardenContracts

/// Why an admin request failed, rendered once as an RFC 9457 problem document
/// (`application/problem+json`): `type` is one of a fixed set (`urn:warden:problem:<code>`), `title`
/// its summary, `status` the HTTP status, `detail` the specific reason (never a secret), and `code`
/// the short name scripts match on.
struct AdminProblem: Error, Sendable {
    enum Kind: String, Sendable, CaseIterable {
        case invalid
        case unauthorized
        case forbidden
        case notFound = "not_found"
        case conflict
        case unavailable

        var status: HTTPResponse.Status {
            switch self {
            case .invalid: .badRequest
            case .unauthorized: .unauthorized
            case .forbidden: .forbidden
            case .notFound: .notFound
            case .conflict: .conflict
            case .unavailable: .serviceUnavailable
            }
        }

        var title: String {
            switch self {
            case .invalid: "The request is not valid"
            case .unauthorized: "An admin credential is required"
            case .forbidden: "This credential may not do that"
            case .notFound: "Not found"
            case .conflict: "It conflicts with what exists"
            case .unavailable: "Temporarily unavailable; try again"
            }
        }

        var type: String { "urn:warden:problem:\(rawValue.replacingOccurrences(of: "_", with: "-"))" }
    }

    var kind: Kind
    var detail: String
    /// Extra headers (`WWW-Authenticate` on 401).
    var headers: HTTPFields = [:]

    init(_ kind: Kind, _ detail: String, headers: HTTPFields = [:]) {
        self.kind = kind
        self.detail = detail
        self.headers = headers
    }

    /// A service's refusal over NATS, in the admin API's terms.
    init(_ error: ServiceError) {
        let kind: Kind =
            switch error.code {
            case .badRequest: .invalid
            case .notFound: .notFound
            case .conflict: .conflict
            case .forbidden: .forbidden
            case .unauthorized: .unauthorized
            default: .unavailable
            }
        self.init(kind, error.message)
    }

    init(_ error: RegistryError) {
        let kind: Kind =
            switch error.code {
            case .invalid: .invalid
            case .notFound: .notFound
            case .conflict: .conflict
            case .unavailable: .unavailable
            }
        self.init(kind, error.description)
    }

    struct Document: Codable, Equatable {
        var type: String
        var title: String
        var status: Int
        var detail: String
        var code: String
    }

    var document: Document {
        Document(type: kind.type, title: kind.title, status: Int(kind.status.code), detail: detail, code: kind.rawValue)
    }

    var response: Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(document)) ?? Data()
        var fields: HTTPFields = [.contentType: "application/problem+json", .cacheControl: "no-store"]
        for field in headers { fields.append(field) }
        return Response(status: kind.status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
