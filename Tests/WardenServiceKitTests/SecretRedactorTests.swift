import Foundation
import Logging
import Synchronization
import Testing

@testable import WardenServiceKit

@Suite struct SecretRedactorTests {
    static let key = "sk-live-4f9a2c7e1b8d3a6f"
    let redactor = SecretRedactor(secrets: [(label: "github/token", value: Self.key), (label: "db/password", value: "correct horse/battery")])

    func redacted(_ text: String) -> String { redactor.redact(text) ?? text }

    @Test func aValueIsReplacedWhereverItStandsAndInEveryEncoding() {
        let bytes = Data(Self.key.utf8)
        let marker = "[redacted:github/token]"
        #expect(redacted("token=\(Self.key); done") == "token=\(marker); done")
        #expect(redacted(bytes.base64EncodedString()) == marker)
        #expect(redacted(bytes.base64EncodedString().replacingOccurrences(of: "=", with: "")) == marker)
        #expect(redacted(bytes.map { String(format: "%02x", $0) }.joined()) == marker)
        #expect(redacted(bytes.map { String(format: "%02X", $0) }.joined()) == marker)
        #expect(redacted("a \"correct horse\\/battery\" b") == "a \"[redacted:db/password]\" b")
        #expect(redacted("q=correct%20horse%2Fbattery&x=1") == "q=[redacted:db/password]&x=1")
        // Inside a longer base64 text, at each of the three byte alignments.
        for prefix in ["", "a", "ab", "abc"] {
            let blob = Data((prefix + Self.key + "-and-more").utf8).base64EncodedString()
            let result = redacted(blob)
            #expect(result.contains("[redacted:github/token]"), "alignment \(prefix.count): \(blob)")
            #expect(Data(base64Encoded: blob).map { String(decoding: $0, as: UTF8.self).contains(Self.key) } == true)
        }
        // Several values and overlaps in one text.
        #expect(redacted("\(Self.key)\(Self.key) correct horse/battery") == "[redacted:github/token] [redacted:db/password]")
    }

    @Test func textWithoutSecretsIsLeftAsItIs() {
        for text in ["", "hello", "sk-live-", String(repeating: "a", count: 10_000), "correct horse battery"] {
            #expect(redactor.redact(text) == nil, "\(text.prefix(40))")
        }
        #expect(SecretRedactor.empty.redact(Self.key) == nil)
        // Values too short to find reliably are not searched at all.
        #expect(SecretRedactor(secrets: [(label: "pin", value: "1234567")]).isEmpty)
    }

    @Test func aValueSplitAcrossTextsOfAStreamIsRedactedOnBothSides() {
        let middle = Self.key.index(Self.key.startIndex, offsetBy: 10)
        // Adjacent texts: the scan carries on.
        var scan = SecretRedactor.Scan()
        let first = redactor.redact("key: " + Self.key[..<middle], scan: &scan)
        let second = redactor.redact(String(Self.key[middle...]) + " end", scan: &scan)
        #expect(first == "key: [redacted:github/token]")
        #expect(second == "[redacted:github/token] end")
        // Texts with others between them (fields of two events): each side is found on its own.
        var other = SecretRedactor.Scan()
        #expect(redactor.redact("progress " + Self.key[..<middle], scan: &other) == "progress [redacted:github/token]")
        #expect(redactor.redact("progressToken", scan: &other) == nil)
        #expect(redactor.redact(String(Self.key[middle...]), scan: &other) == "[redacted:github/token]")
        // Outside a stream (log lines) nothing is held.
        #expect(redactor.redact("key: " + Self.key[..<middle]) == nil)
    }

    @Test func logEventsLoseTheValuesTheProcessHolds() throws {
        let lines = Mutex<[String]>([])
        struct Capture: LogHandler {
            let lines: @Sendable (String) -> Void
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                lines("\(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })")
            }
        }
        let value = "log-secret-\(UUID().uuidString)"
        LogRedaction.add([(label: "test/log", value: value)])
        var logger = Logger(label: "test") { _ in
            RedactingLogHandler(wrapped: Capture(lines: { line in lines.withLock { $0.append(line) } }))
        }
        logger[metadataKey: "header"] = "Bearer \(value)"
        logger.info("stderr: \(value)", metadata: ["line": "\(value)", "nested": ["a": .string(value)]])
        let line = try #require(lines.withLock { $0.first })
        #expect(!line.contains(value), "\(line)")
        #expect(line.contains("[redacted:test/log]"))
    }

    /// Overlapping values over a two-letter alphabet exercise every failure link: whatever the
    /// text, no value survives the pass, and the pass agrees with a plain search about whether any
    /// value was there.
    @Test func noOccurrenceSurvivesWhateverTheOverlaps() {
        var random = SystemRandomNumberGenerator()
        func word(_ length: Int) -> String { String((0..<length).map { _ in Bool.random(using: &random) ? "a" : "b" }) }
        for _ in 0..<200 {
            let secrets = (0..<Int.random(in: 1...4, using: &random)).map { _ in word(Int.random(in: 8...14, using: &random)) }
            let redactor = SecretRedactor(secrets: secrets.enumerated().map { (label: "s\($0.offset)", value: $0.element) })
            let text = word(Int.random(in: 0...200, using: &random))
            let result = redactor.redact(text)
            let present = secrets.contains { text.contains($0) }
            #expect((result != nil) == present, "\(secrets) in \(text)")
            // Markers hold no a/b runs long enough to form a value again: check the text between them.
            for piece in (result ?? text).split(separator: "]").map({ $0.split(separator: "[").first.map(String.init) ?? "" }) {
                #expect(!secrets.contains { piece.contains($0) }, "\(secrets) left in \(result ?? text)")
            }
        }
    }

    /// The largest value the vault stores builds quickly and small, and is found.
    @Test func aLargeValueIsFoundWithoutADenseTableOfItsSize() {
        let value = (0..<4_096).map { String(format: "%04x", $0 &* 2_654_435_761 & 0xFFFF) }.joined()  // 16 KiB, varied
        let clock = ContinuousClock()
        var redactor = SecretRedactor.empty
        let built = clock.measure { redactor = SecretRedactor(secrets: [(label: "big", value: value)]) }
        #expect(built < .seconds(5), "built in \(built)")
        #expect(redactor.redact("before \(value) after") == "before [redacted:big] after")
        #expect(redactor.redact(Data(value.utf8).base64EncodedString()) == "[redacted:big]")
    }
}
