import Testing

@testable import WardenPolicyEngine

/// The wildcard rules' index: it finds exactly the literals a text contains, and the engine looks
/// at the same rules through it as it would by testing every rule.
@Suite struct LiteralIndexTests {
    @Test func findsEveryLiteralATextContainsAndNoOther() {
        var random = SystemRandomNumberGenerator()
        func word(_ length: Int) -> [UInt8] {
            (0..<length).map { _ in [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "_")].randomElement(using: &random)! }
        }
        for _ in 0..<300 {
            let literals = (0..<Int.random(in: 1...12, using: &random)).map { _ in word(Int.random(in: 1...5, using: &random)) }
            let index = LiteralIndex(literals.enumerated().map { ($0.element, $0.offset) })
            let text = word(Int.random(in: 0...30, using: &random))
            var found: [Int] = []
            index.values(in: text, into: &found)
            let expected = literals.indices.filter { literal in
                let needle = literals[literal]
                return text.count >= needle.count && (0...(text.count - needle.count)).contains { Array(text[$0..<($0 + needle.count)]) == needle }
            }
            #expect(
                Set(found) == Set(expected), "\(literals.map { String(decoding: $0, as: UTF8.self) }) in \(String(decoding: text, as: UTF8.self))")
        }
    }

    @Test func aPatternIsIndexedByARunOfItsOwnPartWhenItHasOne() {
        func literal(_ pattern: String) -> String { String(decoding: ToolPattern(pattern).requiredLiteral, as: UTF8.self) }
        #expect(literal("github__*_issue") == "_issue", "the tool's own part, not the server's prefix")
        #expect(literal("github__*") == "github__")
        #expect(literal("github__*_*") == "github__", "a run of one byte is too common to tell rules apart")
        #expect(literal("*write*") == "write")
        #expect(literal("a?c*") == "a", "the longest of equals")
        #expect(literal("*") == "" && literal("?*?") == "", "wildcards only: tested on every decision")
    }

    @Test func theEngineConsidersTheRulesThatApplyWhateverThePatterns() throws {
        var random = SystemRandomNumberGenerator()
        let pieces = ["*", "?", "a", "b", "ab", "__", "x1", "_"]
        func pattern() -> String { (0..<Int.random(in: 1...4, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined() }
        func name() -> String {
            let own = (0..<Int.random(in: 1...6, using: &random)).map { _ in ["a", "b", "x1", "_"].randomElement(using: &random)! }.joined()
            return ["s", "ab"].randomElement(using: &random)! + "__" + own
        }
        for _ in 0..<50 {
            var yaml = "rules:\n"
            for rule in 0..<Int.random(in: 1...20, using: &random) {
                let tools = (0..<Int.random(in: 1...2, using: &random)).map { _ in "\"\(pattern())\"" }.joined(separator: ", ")
                let effect = Bool.random(using: &random) ? "allow" : "deny"
                let about = Int.random(in: 0..<4, using: &random) == 0 ? ", agents: {classes: [c]}" : ""
                yaml += "  - {id: r\(rule), effect: \(effect), tools: [\(tools)]\(about)}\n"
            }
            let engine = PolicyEngine(admin: try PolicyDocument(yaml: yaml))
            for _ in 0..<20 {
                let tool = name()
                let input = DecisionInput(org: "acme", agent: "a", agentClass: "c", user: "u", tool: tool)
                let considered = engine.adminRules(input, ToolName(tool)).map(\.id)
                let applying = engine.admin.filter { $0.applies(to: input, name: ToolName(tool)) }.map(\.id)
                #expect(considered == applying, "\(tool) under\n\(yaml)")
            }
        }
    }
}
