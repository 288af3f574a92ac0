import Foundation
import Hummingbird
import Testing
import WardenContracts

@testable import WardenGateway

/// Admin API errors: one renderer, RFC 9457 documents of a fixed set of types.
@Suite struct AdminProblemTests {
    @Test func aProblemIsAnRFC9457DocumentWithItsCode() throws {
        let response = AdminProblem(.notFound, "no org 'acme'").response
        #expect(response.status == .notFound)
        #expect(response.headers[.contentType] == "application/problem+json")
        let problem = AdminProblem(.notFound, "no org 'acme'").document
        #expect(problem == .init(type: "urn:warden:problem:not-found", title: "Not found", status: 404, detail: "no org 'acme'", code: "not_found"))
    }

    @Test func everyKindHasItsOwnTypeAndStatus() {
        let kinds = AdminProblem.Kind.allCases
        #expect(Set(kinds.map(\.type)).count == kinds.count)
        #expect(kinds.map { Int($0.status.code) } == [400, 401, 403, 404, 409, 503])
    }

    @Test func serviceAndRegistryErrorsMapToTheirKind() {
        #expect(AdminProblem(ServiceError(.badRequest, "email is not valid")).document.status == 400)
        #expect(AdminProblem(ServiceError(.conflict, "exists")).kind == .conflict)
        #expect(AdminProblem(ServiceError(.timeout, "slow")).kind == .unavailable)
        #expect(AdminProblem(RegistryError(.notFound, "no server 'x'")).kind == .notFound)
    }
}
