import Foundation
import Testing
import WardenMCP

@testable import WardenContracts

/// The envelopes of a policy decision and a secret read, written by hand, read back by Codable as
/// exactly what Codable's own encoding reads back as; other bodies still go through Codable.
@Suite struct HandWrittenJSONTests {
    static let awkward = AuditJSONTests.awkward

    /// Codable's encoding with sorted keys: two values that encode alike are alike.
    func canonical(_ value: some Encodable) throws -> String {
        String(decoding: try EnvelopeCoding.encoder().encode(value), as: UTF8.self)
    }

    func readBack<Body: Codable & Sendable & HandWrittenJSON>(_ body: Body) throws -> Body {
        var json = JSONBytes()
        body.writeJSON(to: &json)
        return try EnvelopeCoding.decoder().decode(Body.self, from: json.data)
    }

    static var questions: [PolicyQuestion] {
        [
            PolicyQuestion(
                org: "acme", agent: "agt_1", tool: "corp__search", arguments: #"{"q":"\#(awkward)"}"#, clientAddress: "2001:db8::1",
                client: "oauth-client:c1", claims: ["department": awkward, awkward: "x", "": ""],
                time: Date(timeIntervalSince1970: 1_800_000_000.987), roles: ["admin", awkward], scopes: [], kind: "resource"),
            PolicyQuestion(org: "a", agent: "b", tool: "c"),
            // Every field but the date (which the hand-written reader leaves to Codable).
            PolicyQuestion(
                org: "acme", agent: "agt_2", tool: "corp__read", arguments: "{}", clientAddress: "10.0.0.1", client: "cursor",
                claims: ["team": "red", "level": awkward], roles: ["viewer"], scopes: ["mcp:tools", "x"], kind: "prompt"),
        ]
    }

    static var explanations: [PolicyExplanation] {
        var full = PolicyExplanation(
            decision: "approve",
            layers: [
                .init(layer: "org", outcome: "allow", rules: ["r1", awkward], reason: awkward),
                .init(layer: "user", outcome: "none", rules: [], reason: ""),
            ],
            versions: [3, 0], dependsOnCall: true, approverRoles: ["admin"], approverUsers: ["usr_1", "usr_2"], approvals: 2)
        full.approvalExpiresSeconds = 900
        full.approvalRule = "needs-two"
        full.approvalAllowSelf = false
        full.limits = [
            CallLimit(id: "burst", kind: .rate, count: 10, periodSeconds: 60, burst: 5, per: ["agent", "tool"]),
            CallLimit(id: "day", kind: .quota, count: -1, periodSeconds: 86_400, burst: 0, per: []),
        ]
        full.maxResultBytes = 1 << 20
        full.redact = ["$.password", awkward]
        return [full, PolicyExplanation(decision: "deny", layers: [], versions: [], dependsOnCall: false)]
    }

    @Test func bodiesReadBackAsCodablesEncodingDoes() throws {
        for question in Self.questions { #expect(try canonical(readBack(question)) == canonical(question)) }
        for explanation in Self.explanations { #expect(try readBack(explanation) == explanation) }
        for reference in [SecretReference(org: "acme", path: "github/token", version: 7), SecretReference(org: awkwardOrg, path: "p")] {
            #expect(try readBack(reference) == reference)
        }
        let value = SecretValue(version: 12, value: Data("s3cr3t".utf8).base64EncodedString())
        #expect(try canonical(readBack(value)) == canonical(value))
    }

    var awkwardOrg: String { Self.awkward }

    @Test func envelopesReadBackAsCodablesEncodingDoes() throws {
        let decoder = EnvelopeCoding.decoder()
        for question in Self.questions {
            let request = try decoder.decode(RequestEnvelope<PolicyQuestion>.self, from: EnvelopeCoding.request(question))
            #expect(request.v == wardenEnvelopeVersion)
            #expect(try canonical(request.body) == canonical(question))
        }
        for explanation in Self.explanations {
            let reply = try decoder.decode(ReplyEnvelope<PolicyExplanation>.self, from: EnvelopeCoding.reply(.success(explanation)))
            #expect(reply.v == wardenEnvelopeVersion && reply.error == nil)
            #expect(reply.ok == explanation)
        }
        let failure = try decoder.decode(
            ReplyEnvelope<SecretValue>.self, from: EnvelopeCoding.reply(ReplyEnvelope<SecretValue>.failure(ServiceError(.notFound, Self.awkward))))
        #expect(failure.ok == nil && failure.error == ServiceError(.notFound, Self.awkward) && failure.v == wardenEnvelopeVersion)
    }

    /// The hand-written reader takes what the writer writes and what Codable writes, and refuses
    /// (leaving the document to Codable) what it does not read exactly as Codable would.
    @Test func bodiesAreReadByHandAsCodableReadsThem() throws {
        func both<Body: Codable & Sendable & HandWrittenJSON>(_ body: Body) throws -> (hand: Body?, codable: Body?) {
            var json = JSONBytes()
            body.writeJSON(to: &json)
            let fromHand = Body(json: try JSONParser().parse(json.bytes))
            let fromCodable = Body(json: try JSONParser().parse(Array(try EnvelopeCoding.encoder().encode(body))))
            return (fromHand, fromCodable)
        }
        let undated = Self.questions.filter { $0.time == nil }
        #expect(undated.count == 2)
        for question in undated {
            let read = try both(question)
            #expect(try canonical(read.hand) == canonical(question) && canonical(read.codable) == canonical(question))
        }
        // Each field read into its own property (two swapped would still pass a count).
        let full = try #require(undated.last)
        let read = try #require(try both(full).hand)
        #expect(read.roles == ["viewer"] && read.scopes == ["mcp:tools", "x"] && read.kind == "prompt" && read.client == "cursor")
        #expect(read.clientAddress == "10.0.0.1" && read.claims == full.claims && read.arguments == "{}" && read.tool == "corp__read")
        for explanation in Self.explanations {
            let read = try both(explanation)
            #expect(read.hand == explanation && read.codable == explanation)
        }
        let reference = SecretReference(org: "acme", path: "github/token", version: 7)
        #expect(try both(reference) == (reference, reference))
        let value = SecretValue(version: 12, value: "czNjcjN0")
        let readValue = try both(value)
        #expect(readValue.hand?.value == value.value && readValue.hand?.version == 12 && readValue.codable?.value == value.value)

        // Left to Codable: a date, a number with a fraction or beyond Int, a wrong type, a missing member.
        let refused = [
            #"{"org":"a","agent":"b","tool":"c","time":"2026-11-30T00:00:00Z"}"#, #"{"org":"a","agent":"b","tool":1}"#,
            #"{"org":"a","agent":"b"}"#, #"{"org":"a","agent":"b","tool":"c","roles":["x",1]}"#,
        ]
        for document in refused { #expect(PolicyQuestion(json: try JSONParser().parse(document)) == nil, "\(document)") }
        for document in [#"{"org":"a","path":"p","version":1.0}"#, #"{"org":"a","path":"p","version":99999999999999999999}"#] {
            #expect(SecretReference(json: try JSONParser().parse(document)) == nil, "\(document)")
        }
        // Null and unknown members read as Codable reads them.
        #expect(
            SecretReference(json: try JSONParser().parse(#"{"org":"a","path":"p","version":null,"extra":[1]}"#))
                == SecretReference(org: "a", path: "p"))
    }

    /// The envelopes read by hand give what Codable gives, and whatever the hand-written reader
    /// leaves is read (or refused) by Codable as before.
    @Test func envelopesAreReadByHandAsCodableReadsThem() throws {
        let reference = SecretReference(org: "acme", path: "x/y", version: 3)
        let request = try EnvelopeCoding.decodeRequest(SecretReference.self, from: EnvelopeCoding.request(reference))
        #expect(request.v == wardenEnvelopeVersion && request.body == reference)
        let future = try EnvelopeCoding.decodeRequest(SecretReference.self, from: Data(#"{"v":7,"body":{"org":"a","path":"p"}}"#.utf8))
        #expect(future.v == 7 && future.body == SecretReference(org: "a", path: "p"))
        for explanation in Self.explanations {
            #expect(try EnvelopeCoding.decodeReply(PolicyExplanation.self, from: EnvelopeCoding.reply(.success(explanation))).ok == explanation)
        }
        let failure = try EnvelopeCoding.decodeReply(
            PolicyExplanation.self, from: EnvelopeCoding.reply(ReplyEnvelope<PolicyExplanation>.failure(ServiceError(.forbidden, Self.awkward))))
        #expect(failure.ok == nil && failure.error == ServiceError(.forbidden, Self.awkward))
        // A date goes to Codable, which reads it.
        let dated = try EnvelopeCoding.decodeRequest(
            PolicyQuestion.self, from: Data(#"{"v":1,"body":{"org":"a","agent":"b","tool":"c","time":"2026-11-30T08:00:00Z"}}"#.utf8))
        #expect(dated.body.time == Date(timeIntervalSince1970: 1_796_025_600))
        // What neither reads is refused as Codable refuses it.
        // A duplicate member (the parser refuses them) is left to Codable too.
        let duplicated = Data(#"{"v":1,"body":{"org":"a","path":"p","org":"b"}}"#.utf8)
        #expect(
            try EnvelopeCoding.decodeRequest(SecretReference.self, from: duplicated).body
                == EnvelopeCoding.decode(RequestEnvelope<SecretReference>.self, from: duplicated).body)
        for document in ["not json", #"{"v":1,"body":{"org":"a"}}"#, #"{"v":1,"body":{"org":"a","path":7}}"#] {
            #expect(throws: DecodingError.self, "\(document)") { try EnvelopeCoding.decodeRequest(SecretReference.self, from: Data(document.utf8)) }
        }
    }

    /// Every stored property of a hand-written body is written: a field added to the type but not
    /// to its writer fails here (the fixtures set every optional field), not silently on the wire.
    @Test func writersWriteEveryStoredProperty() throws {
        func keys(_ body: some HandWrittenJSON) throws -> Set<String> {
            var json = JSONBytes()
            body.writeJSON(to: &json)
            return Set(try JSONParser().parse(json.bytes).objectMembers?.map(\.key) ?? [])
        }
        func properties(_ value: Any) -> Set<String> { Set(Mirror(reflecting: value).children.compactMap(\.label)) }
        let question = try #require(Self.questions.first)
        let explanation = try #require(Self.explanations.first)
        #expect(try keys(question) == properties(question))
        #expect(try keys(explanation) == properties(explanation))
        #expect(try keys(SecretReference(org: "a", path: "p", version: 1)) == properties(SecretReference(org: "a", path: "p", version: 1)))
        #expect(try keys(SecretValue(version: 1, value: "")) == properties(SecretValue(version: 1, value: "")))
        // The nested types too, through the explanation's JSON.
        let members = try JSONParser().parse(EnvelopeCoding.encoder().encode(explanation))
        var written = JSONBytes()
        explanation.writeJSON(to: &written)
        let hand = try JSONParser().parse(written.bytes)
        for (name, sample) in [("layers", properties(explanation.layers[0])), ("limits", properties(try #require(explanation.limits?.first)))] {
            guard case .array(let elements)? = hand[name], case .array(let codable)? = members[name] else {
                Issue.record("no \(name)")
                continue
            }
            #expect(Set(elements.first?.objectMembers?.map(\.key) ?? []) == sample, "\(name)")
            #expect(Set(codable.first?.objectMembers?.map(\.key) ?? []) == sample, "\(name)")
        }
    }

    /// A body that writes no JSON of its own is encoded by Codable, as before.
    @Test func otherBodiesGoThroughCodable() throws {
        struct Plain: Codable, Sendable, Equatable { var when: Date; var bytes: Data }
        let plain = Plain(when: Date(timeIntervalSince1970: 1_800_000_000), bytes: Data([0, 1, 2]))
        let decoder = EnvelopeCoding.decoder()
        #expect(try EnvelopeCoding.request(plain) == EnvelopeCoding.encoder().encode(RequestEnvelope(plain)))
        #expect(try decoder.decode(RequestEnvelope<Plain>.self, from: EnvelopeCoding.request(plain)).body == plain)
        #expect(try decoder.decode(ReplyEnvelope<Plain>.self, from: EnvelopeCoding.reply(.success(plain))).ok == plain)
    }
}
