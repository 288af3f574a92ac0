import Foundation
import Testing

@testable import WardenContracts

/// `AuditEventReader` reads what Codable's decoding of `AuditEvent` reads, and refuses what it
/// refuses: ingestion stores, and verification later checks, what this reader makes of a line.
@Suite struct AuditEventReaderTests {
    static let base =
        #""id":"e1","time":"2026-11-30T12:00:00Z","service":"gateway","action":"mcp.tools.call","outcome":"success","actor":"a","target":"t","detail":"d""#
    static let call = #""method":"tools/call","result":"success","latencyMicroseconds":5"#

    /// Documents side by side: accepted by both with the same event, or refused by both.
    static let documents: [String] = [
        "{\(base)}",
        "{\(base),\"org\":\"acme\",\"requestID\":\"r\"}",
        "{\(base),\"org\":null,\"requestID\":null,\"call\":null}",
        "{\(base),\"unknown\":[1,{\"x\":2}],\"also\":null}",
        "{\(base),\"call\":{\(call)}}",
        "{\(base),\"call\":{\(call),\"name\":\"n\",\"server\":\"s\",\"agent\":\"g\",\"user\":\"u\",\"client\":\"c\",\"clientAddress\":\"::1\",\"session\":\"x\",\"decision\":\"allow\",\"errorCode\":-32000,\"arguments\":\"{}\",\"credentials\":[\"secret://a\"],\"requestBytes\":1,\"responseBytes\":2}}",
        "{\(base),\"call\":{\(call),\"credentials\":[],\"errorCode\":null}}",
        "{\(base),\"org\":\"esc \\\" \\\\ \\/ \\n \\u0000 \\u00e9 \\ud83d\\ude00 é\"}",
        // Integers written otherwise.
        "{\(base),\"call\":{\"method\":\"m\",\"result\":\"r\",\"latencyMicroseconds\":5.0}}",
        "{\(base),\"call\":{\"method\":\"m\",\"result\":\"r\",\"latencyMicroseconds\":1e2}}",
        "{\(base),\"call\":{\"method\":\"m\",\"result\":\"r\",\"latencyMicroseconds\":5.5}}",
        "{\(base),\"call\":{\"method\":\"m\",\"result\":\"r\",\"latencyMicroseconds\":-0}}",
        "{\(base),\"call\":{\"method\":\"m\",\"result\":\"r\",\"latencyMicroseconds\":9223372036854775807}}",
        "{\(base),\"call\":{\"method\":\"m\",\"result\":\"r\",\"latencyMicroseconds\":9223372036854775808}}",
        "{\(base),\"call\":{\"method\":\"m\",\"result\":\"r\",\"latencyMicroseconds\":\"5\"}}",
        "{\(base),\"call\":{\(call),\"errorCode\":1.5}}",
        // Missing, null or mistyped required fields.
        #"{"time":"2026-11-30T12:00:00Z","service":"gateway","action":"a","outcome":"success","actor":"a","target":"t","detail":"d"}"#,
        "{\(base.replacingOccurrences(of: #""id":"e1""#, with: #""id":null"#))}",
        "{\(base.replacingOccurrences(of: #""id":"e1""#, with: #""id":1"#))}",
        "{\(base),\"call\":{\"result\":\"r\",\"latencyMicroseconds\":5}}",
        "{\(base),\"call\":{\"method\":\"m\",\"latencyMicroseconds\":5}}",
        "{\(base),\"call\":{\"method\":\"m\",\"result\":\"r\"}}",
        "{\(base),\"call\":\"tools/call\"}",
        "{\(base),\"call\":{\(call),\"credentials\":[1]}}",
        "{\(base),\"call\":{\(call),\"credentials\":\"secret://a\"}}",
        "{\(base),\"org\":5}",
        // Enumerations.
        "{\(base.replacingOccurrences(of: #""outcome":"success""#, with: #""outcome":"maybe""#))}",
        "{\(base.replacingOccurrences(of: #""service":"gateway""#, with: #""service":"printer""#))}",
        // Dates.
        "{\(base.replacingOccurrences(of: "2026-11-30T12:00:00Z", with: "2026-11-30T12:00:00+01:00"))}",
        "{\(base.replacingOccurrences(of: "2026-11-30T12:00:00Z", with: "2026-11-30T12:00:00.123Z"))}",
        "{\(base.replacingOccurrences(of: "2026-11-30T12:00:00Z", with: "2026-11-30"))}",
        "{\(base.replacingOccurrences(of: "2026-11-30T12:00:00Z", with: "2026-11-30 12:00:00Z"))}",
        "{\(base.replacingOccurrences(of: "2026-11-30T12:00:00Z", with: "yesterday"))}",
        "{\(base.replacingOccurrences(of: #""time":"2026-11-30T12:00:00Z""#, with: #""time":1800000000"#))}",
        // Not an object, or not JSON.
        "[\(base)]", "\"event\"", "", "{", "{\(base)} x",
    ]

    @Test(arguments: documents) func readsWhatCodableReads(document: String) {
        let codable = try? EnvelopeCoding.decoder().decode(AuditEvent.self, from: Data(document.utf8))
        let read = try? AuditEventReader.event(from: document.utf8)
        #expect(read == codable)
    }

    @Test func theAcceptedDocumentsAreNotAllRefusedOrAllAccepted() {
        // The side-by-side test above proves nothing if every document falls on one side.
        let accepted = Self.documents.filter { (try? AuditEventReader.event(from: $0.utf8)) != nil }
        #expect(accepted.count >= 10)
        #expect(Self.documents.count - accepted.count >= 15)
    }

    /// On purpose stricter than Codable, which reads all of these (the first of two keys; a comma
    /// before a brace or a bracket; members no field reads are not looked at): two readers could
    /// disagree on which key counts, and none is JSON a Warden service writes.
    static let refusedOnPurpose: [String] = [
        "{\(base),\"actor\":\"someone else\"}",
        "{\(base),}",
        "{\(base),\"call\":{\(call),\"credentials\":[\"a\",]}}",
        "{\(base),\"unknown\":\"\\q\"}",
        "{\(base),\"unknown\":01}",
        "{\(base),\"unknown\":\(String(repeating: "[", count: 70))\(String(repeating: "]", count: 70))}",
    ]

    @Test(arguments: refusedOnPurpose) func refusedOnPurposeAtIngestionButReadWhenStored(document: String) throws {
        let codable = try EnvelopeCoding.decoder().decode(AuditEvent.self, from: Data(document.utf8))
        #expect(throws: AuditEventReader.Unreadable.self) { try AuditEventReader.event(from: document.utf8) }
        // A record an older version stored is read as it was then: never reported altered.
        #expect(AuditEventReader.stored(document) == codable)
    }

    @Test func anUnreadableDocumentSaysWhy() {
        let document = "{\(Self.base.replacingOccurrences(of: #""outcome":"success""#, with: #""outcome":"maybe""#))}"
        #expect(throws: AuditEventReader.Unreadable(reason: "outcome is not a known value")) { try AuditEventReader.event(from: document.utf8) }
    }
}
