import Foundation
import Testing

@testable import WardenContracts

/// The hand-written audit JSON decodes to exactly what Codable's encoding of the same value does.
@Suite struct AuditJSONTests {
    static let awkward = "quote \" backslash \\ slash / newline \n tab \t return \r nul \u{0} bell \u{7} del \u{7F} ünïcödé 😀 \u{2028}"

    static var events: [AuditEvent] {
        [
            AuditEvent(
                time: Date(timeIntervalSince1970: 1_800_000_000.987_654), service: .gateway, action: "mcp.tools.call", outcome: .success,
                org: "acme", actor: "agent:agt_1", target: "corp__search", detail: awkward,
                call: AuditCall(
                    method: "tools/call", name: "corp__search", server: "corp", agent: "agt_1", user: "usr_1", client: "oauth-client:c1",
                    clientAddress: "2001:db8::1", session: "s-1", decision: "allow", result: "protocol_error", errorCode: -32_045,
                    arguments: #"{"q": "\#(awkward)"}"#, credentials: ["secret://github/token", "oauth://github"], latencyMicroseconds: 1_234_567,
                    requestBytes: 10, responseBytes: 20),
                requestID: "req-1"),
            AuditEvent(
                time: Date(timeIntervalSince1970: 0), service: .vault, action: "secret.read", outcome: .denied, org: nil, actor: "gateway",
                target: "", detail: ""),
            AuditEvent(
                time: Date(timeIntervalSince1970: -86_400.5), service: .audit, action: "audit.unrecorded", outcome: .failure, org: "a.b-c_d",
                actor: "gateway", target: "audit", detail: "x",
                call: AuditCall(
                    method: "tools/list", name: nil, server: nil, agent: nil, user: nil, client: nil, clientAddress: nil, session: nil, decision: nil,
                    result: "success", errorCode: nil, arguments: nil, credentials: [], latencyMicroseconds: 0, requestBytes: nil, responseBytes: nil)
            ),
        ]
    }

    @Test func eventsDecodeToWhatCodablesEncodingDecodesTo() throws {
        let decoder = EnvelopeCoding.decoder()
        for event in Self.events {
            var line: [UInt8] = []
            AuditJSON.write(event, to: &line)
            #expect(!line.contains(0x0A), "one line")
            let written = try decoder.decode(AuditEvent.self, from: Data(line))
            let viaCodable = try decoder.decode(AuditEvent.self, from: try EnvelopeCoding.encoder().encode(event))
            #expect(written == viaCodable, "\(String(decoding: line, as: UTF8.self))")
            #expect(try AuditEventReader.event(from: line) == viaCodable, "\(String(decoding: line, as: UTF8.self))")
            // What the other services publish (Codable's encoding), and what older versions stored.
            #expect(try AuditEventReader.event(from: try EnvelopeCoding.encoder().encode(event)) == viaCodable)
        }
    }

    @Test func datesAreWrittenAsCodableWritesThem() throws {
        for seconds in [
            0, 1_800_000_000.999, 951_782_400, -1.5, 4_102_444_799, 978_307_199.999_999_9, -62_135_596_800, -62_200_000_000, 253_402_300_800,
        ] as [Double] {
            let date = Date(timeIntervalSince1970: seconds)
            let codable = String(decoding: try EnvelopeCoding.encoder().encode([date]), as: UTF8.self)
            #expect(codable == "[\"\(AuditJSON.iso8601(date))\"]", "\(seconds)")
        }
    }

    @Test func recordsDecodeToThemselves() throws {
        let record = AuditChainedRecord(position: 42, previousHash: String(repeating: "a", count: 64), hash: "b", body: Self.awkward)
        #expect(try EnvelopeCoding.decoder().decode(AuditChainedRecord.self, from: AuditJSON.data(record)) == record)
    }
}
