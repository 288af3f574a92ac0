import Foundation
import Testing
import WardenMCP

@Suite struct JSONValueTests {
    let parser = JSONParser()

    @Test(arguments: [
        #"{"b":1,"a":[true,false,null],"c":{"x":"y"}}"#,
        #"{"id":9007199254740993,"big":1.000000000000000000001,"e":-2E+10}"#,
        #"["\u00e9\u2028 \"quoted\" \\ \/",""]"#,
        #"{"structuredContent":{"rows":[{"n":0},{"n":-0.5}]},"_meta":{"progressToken":"t"},"unknown":{}}"#,
    ])
    func roundTripKeepsOrderAndNumbers(_ text: String) throws {
        let value = try parser.parse(text)
        let again = try parser.parse(value.jsonText)
        #expect(again == value)
        if !text.contains("\\") { #expect(value.jsonText == text) }
    }

    @Test func numbersKeepTheirText() throws {
        let value = try parser.parse(#"{"id":9007199254740993}"#)
        #expect(value["id"] == .number("9007199254740993"))
    }

    @Test func escapesAndUnicode() throws {
        let value = try parser.parse(#""a\nb\t\u00e9\ud83d\ude00""#)
        #expect(value == .string("a\nb\té😀"))
        #expect(JSONValue.string("line\nbreak \"q\" \u{01}").jsonText == #""line\nbreak \"q\" \u0001""#)
    }

    /// Every ASCII byte (and some beyond) at the start, middle and end of a string, against the
    /// plain byte-by-byte escaping, and read back as the same string.
    @Test func everyByteIsEscapedWhereItStands() throws {
        func plain(_ text: String) -> String {
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += #"\""#
                case "\\": out += #"\\"#
                case "\n": out += #"\n"#
                case "\r": out += #"\r"#
                case "\t": out += #"\t"#
                case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
        var samples = ["", "plain", "é😀 \u{2028}", String(repeating: "long run ", count: 40), "é\"😀\\", "\\é\n😀\""]
        let long = String(repeating: "x", count: 40)
        for code in 0..<0x80 {
            let character = String(UnicodeScalar(UInt8(code)))
            // Short strings (stored inline) and long ones (stored apart), the byte at each end and inside.
            samples += [character, "a\(character)", "\(character)b", "ab\(character)cd\(character)\(character)e"]
            samples += ["\(character)\(long)é\(character)", "\(long)\(character)\(character)😀\(long)\(character)"]
        }
        for text in samples {
            #expect(Array(JSONValue.string(text).jsonText.utf8) == Array(plain(text).utf8), "\(Array(text.utf8))")
            #expect(try parser.parse(JSONValue.string(text).jsonText) == .string(text))
        }
    }

    @Test(arguments: [
        "", "{", "[1,]", #"{"a":1,}"#, #"{"a" 1}"#, "01", "1.", "-", "tru", #""unterminated"#, #""\x""#,
        #""\ud800""#, #"{"a":1,"a":2}"#, "1 2", "\u{01}", #""raw\#ncontrol""#,
    ])
    func malformedInputIsRejected(_ text: String) {
        #expect(throws: JSONParseError.self) { try parser.parse(text) }
    }

    @Test(arguments: [1, 2, 15, 16, 17, 40])
    func aDuplicateNameIsRejectedWhereverItStands(members: Int) throws {
        // Small objects are checked by a scan, large ones by a set: both, at the first and last name.
        let names = (0..<members).map { "\"k\($0)\":\($0)" }
        let unique = "{" + names.joined(separator: ",") + "}"
        #expect(try parser.parse(unique).objectMembers?.count == members)
        for repeated in Set([0, members - 1]) {
            let document = "{" + (names + ["\"k\(repeated)\":null"]).joined(separator: ",") + "}"
            #expect { try parser.parse(document) } throws: { "\($0)".contains("duplicate member \"k\(repeated)\"") }
        }
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect { try parser.parse(deep) } throws: { "\($0)".contains("nesting deeper than 64") }
        #expect(throws: Never.self) { try parser.parse(String(repeating: "[", count: 60) + String(repeating: "]", count: 60)) }
    }

    @Test func invalidUTF8IsRejected() {
        #expect(throws: JSONParseError.self) { try parser.parse([0x22, 0xFF, 0x22]) }
        // Wherever the bad bytes are: after ASCII, after an escape, before one, in a member's name,
        // truncated before the closing quote, overlong, an encoded surrogate, or past U+10FFFF.
        let quote: UInt8 = 0x22
        let invalid: [[UInt8]] = [
            [quote] + Array("abc".utf8) + [0xC3] + [quote],
            [quote] + Array(#"a\n"#.utf8) + [0xE2, 0x82] + [quote],
            [quote, 0xC3, 0x5C, 0x6E, quote],
            [0x7B, quote, 0x80, quote, 0x3A, 0x31, 0x7D],
            [quote, 0xC0, 0xAF, quote],
            [quote, 0xED, 0xA0, 0x80, quote],
            [quote, 0xF4, 0x90, 0x80, 0x80, quote],
        ]
        for bytes in invalid {
            #expect(throws: JSONParseError.self, "\(bytes)") { try parser.parse(bytes) }
        }
    }

    /// ASCII runs take a shorter way to a string than runs with other bytes: both read exactly.
    @Test func stringsReadTheSameWhateverTheirBytes() throws {
        for text in ["", "plain", "caf\u{E9}", "\u{1F600} smile", "a\nb", "tab\there \u{E9}t\u{E9}", "\"quoted\" \\ \u{7F}"] {
            #expect(try parser.parse(JSONValue.string(text).jsonText) == .string(text))
        }
        #expect(try parser.parse(#""\u00e9t\u00E9 ok""#) == .string("\u{E9}t\u{E9} ok"))
    }

    @Test func settingAMemberKeepsTheOthers() throws {
        let value = try parser.parse(#"{"name":"search","inputSchema":{"type":"object"},"x-extra":1}"#)
        let renamed = value.setting("name", to: "github__search")
        #expect(renamed.jsonText == #"{"name":"github__search","inputSchema":{"type":"object"},"x-extra":1}"#)
    }
}
