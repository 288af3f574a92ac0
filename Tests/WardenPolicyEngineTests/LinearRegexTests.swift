import Foundation
import Testing

@testable import WardenPolicyEngine

@Suite struct LinearRegexTests {
    func regex(_ pattern: String) throws -> LinearRegex { try LinearRegex(pattern) }

    @Test func matchesWhatOrdinaryEnginesMatch() throws {
        let cases: [(String, String, Bool)] = [
            ("abc", "xxabcxx", true), ("^abc$", "abc", true), ("^abc$", "abcd", false), ("a.c", "abc", true), ("a.c", "ac", false),
            ("^acme/project-[a-z0-9-]+$", "acme/project-alpha", true), ("^acme/project-[a-z0-9-]+$", "acme/other", false),
            ("colou?r", "color", true), ("colou?r", "colour", true), ("^(cat|dog)s?$", "dogs", true), ("^(cat|dog)s?$", "cow", false),
            ("^\\d{3}-\\d{4}$", "555-1234", true), ("^\\d{3}-\\d{4}$", "55-1234", false), ("^a{2,3}$", "aaaa", false), ("^a{2,}$", "aaaa", true),
            ("[^a-z]", "abc", false), ("[^a-z]", "abC", true), ("^\\w+@\\w+\\.com$", "ada@acme.com", true), ("\\s", "no-space", false),
            ("^$", "", true), ("^(?:ab)*$", "ababab", true), ("^(?:ab)*$", "ababa", false), ("x*", "", true), ("^é+$", "éé", true),
            ("a\\.b", "a.b", true), ("a\\.b", "axb", false), ("^[\\d.]+$", "1.2.3", true), ("[]a]", "]", true), ("a{", "a{", true),
            ("a{-1}", "a{-1}", true), ("a{1,x}", "a{1,x}", true), ("", "anything", true), ("^(){1000}{1000}{1000}$", "", true),
        ]
        for (pattern, text, expected) in cases {
            #expect(try regex(pattern).matches(text) == expected, "/\(pattern)/ on \"\(text)\"")
        }
    }

    @Test func aCatastrophicPatternStaysLinear() throws {
        // (a+)+$ and (a|aa)*b take exponential time in a backtracking engine on "aaaa…c".
        let input = String(repeating: "a", count: 20_000) + "c"
        for pattern in ["^(a+)+$", "(a|aa)*b", "^(a*)*$", "(x+x+)+y"] {
            let compiled = try regex(pattern)
            let clock = ContinuousClock()
            let elapsed = clock.measure { #expect(!compiled.matches(input), "/\(pattern)/") }
            // Linear: tens of milliseconds at most for 20,000 characters, not years.
            #expect(elapsed < .seconds(5), "/\(pattern)/ took \(elapsed)")
        }
    }

    @Test func constructsThatNeedBacktrackingAreRefused() {
        for (pattern, reason) in [
            ("(a)\\1", "backreferences"), ("(?=a)", "lookaround"), ("(?<!a)b", "lookaround"), ("(?i)abc", "inline flags"), ("a{1001}", "at most"),
            ("(abc", "not closed"), ("abc)", "unbalanced"), ("[abc", "not closed"), ("*a", "repeats nothing"), ("\\q", "unknown escape"),
            ("(a{1000}){1000}", "more than"), ("[z-a]", "reversed"), ("abc\\", "ends with"), ("(a{0}){1000}{1000}{1000}{1000}", "more than"),
            ("a{5,2}", "in order"),
        ] {
            let error = #expect(throws: LinearRegex.SyntaxError.self, "/\(pattern)/") { try LinearRegex(pattern) }
            #expect(error?.description.contains(reason) == true, "/\(pattern)/: \(String(describing: error))")
        }
    }
}
