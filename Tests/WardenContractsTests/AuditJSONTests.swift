import Foundation
import Testing

@testable import WardenContracts

/// The hand-written audit JSON decodes to exactly what Codable's encoding of the same value does.
@Suite struct AuditJSONTests {
    static let awkward =
        "quote \" backslash \\ slash / newline \n tab \t return \r nul \u{0} bell \u{7} backspace \u{8} form feed \u{C} del \u{7F} ünïcödé 😀 \u{2028}"

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

    /// Calendar arithmetic against Foundation's: the first and last second of the years written by
    /// hand and the ones either side, leap days of years divisible by 4, 100 and 400 (and the
    /// seconds before them), every day around three century ends, and a sweep over 1600–9999.
    @Test func datesAcrossTheCalendarAreWrittenAsCodableWritesThem() throws {
        let edges: [Double] = [
            -11_676_096_000, -11_676_096_001, 253_402_300_799, -11_670_998_400, -8_515_238_400, -2_203_891_200, 951_782_400, 978_220_800,
            1_709_164_800, 4_107_542_400, 13_574_563_200, 946_684_800, 946_684_799.5,
        ]
        let centuryEnds = ([-2_240_524_800, 915_148_800, 4_070_908_800] as [Double]).flatMap { start in
            (0..<1_096).map { start + Double($0) * 86_400 }
        }
        let sweep = (0..<3_000).map { -11_676_096_000 + Double($0) * 88_335_917.37 }
        let encoder = EnvelopeCoding.encoder()
        for seconds in edges + edges.map { $0 - 1 } + centuryEnds + centuryEnds.map { $0 - 1 } + sweep {
            let date = Date(timeIntervalSince1970: seconds)
            var json = JSONBytes()
            json.beginArray()
            json.date(date)
            json.endArray()
            let codable = String(decoding: try encoder.encode([date]), as: UTF8.self)
            #expect(codable == String(decoding: json.bytes, as: UTF8.self), "\(seconds)")
        }
    }

    @Test func recordsDecodeToThemselves() throws {
        let record = AuditChainedRecord(position: 42, previousHash: String(repeating: "a", count: 64), hash: "b", body: Self.awkward)
        #expect(try EnvelopeCoding.decoder().decode(AuditChainedRecord.self, from: AuditJSON.data(record)) == record)
    }
}
