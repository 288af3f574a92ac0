import Foundation
import Testing
import WardenContracts

@Suite struct EnvelopeTests {
    struct Body: Codable, Sendable, Equatable { var name: String }

    @Test func requestEnvelopeCarriesVersionAndBody() throws {
        let data = try EnvelopeCoding.encoder().encode(RequestEnvelope(Body(name: "x")))
        #expect(String(decoding: data, as: UTF8.self) == #"{"body":{"name":"x"},"v":1}"#)
        let decoded = try EnvelopeCoding.decoder().decode(RequestEnvelope<Body>.self, from: data)
        #expect(decoded.body == Body(name: "x"))
    }

    @Test func replyEnvelopeSuccessAndFailure() throws {
        let ok = ReplyEnvelope<Body>.success(Body(name: "y"))
        #expect(try ok.get() == Body(name: "y"))
        let failure = ReplyEnvelope<Body>.failure(ServiceError(.notFound, "no such thing"))
        let data = try EnvelopeCoding.encoder().encode(failure)
        #expect(String(decoding: data, as: UTF8.self) == #"{"error":{"code":"not_found","message":"no such thing"},"v":1}"#)
        let decoded = try EnvelopeCoding.decoder().decode(ReplyEnvelope<Body>.self, from: data)
        #expect(throws: ServiceError(.notFound, "no such thing")) { try decoded.get() }
    }

    @Test func emptyReplyIsAnInternalError() {
        let empty = ReplyEnvelope<Body>(v: 1, ok: nil, error: nil)
        #expect { try empty.get() } throws: { ($0 as? ServiceError)?.code == .internal }
    }

    @Test func subjectsFollowTheConvention() {
        #expect(PlatformSubjects.health(.policy).subject == "warden.policy.health")
        #expect(PlatformSubjects.heartbeat(.audit) == "warden.heartbeat.audit")
        #expect(WardenServiceName.vault.databaseRole == "warden_vault")
        #expect(WardenServiceName.approvals.queueGroup == "warden.approvals")
    }
}
