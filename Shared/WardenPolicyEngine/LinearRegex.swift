/// Regular expressions matched in time linear in the input (a Thompson NFA run as a Pike VM): a
/// policy's pattern can never be used to stall the gateway, whatever the arguments. Constructs that
/// need backtracking (backreferences, lookaround) are refused when the pattern is compiled.
///
/// Syntax: literals, `.`, classes (`[a-z_]`, `[^0-9]`), `\d \w \s` and their negations, anchors `^`
/// and `$`, groups `( )` and `(?: )`, alternation `|`, quantifiers `* + ?` (lazy forms accepted, same
/// meaning for a yes/no match) and `{m}`, `{m,}`, `{m,n}` (at most 1000). `matches` searches: a
/// pattern matches anywhere unless anchored.
package struct LinearRegex: Sendable, Equatable {
    package struct SyntaxError: Error, Equatable, CustomStringConvertible {
        package var description: String
    }

    /// What one instruction accepts: scalar ranges, or their complement.
    struct ScalarSet: Sendable, Equatable {
        var ranges: [ClosedRange<UInt32>]
        var negated = false

        func contains(_ scalar: Unicode.Scalar) -> Bool {
            ranges.contains { $0.contains(scalar.value) } != negated
        }

        static let any = ScalarSet(ranges: [], negated: true)
        static let digit = ScalarSet(ranges: [48...57])
        static let word = ScalarSet(ranges: [48...57, 65...90, 95...95, 97...122])
        static let space = ScalarSet(ranges: [9...13, 32...32])
    }

    enum Instruction: Sendable, Equatable {
        case scalar(ScalarSet)
        case split(Int, Int)
        case jump(Int)
        case start
        case end
        case match
    }

    indirect enum Node {
        case empty
        case set(ScalarSet)
        case start
        case end
        case concat([Node])
        case alternate([Node])
        case repeating(Node, min: Int, max: Int?)
    }

    static let maximumPatternLength = 1024
    static let maximumInstructions = 20_000
    static let maximumRepeat = 1000

    let program: [Instruction]

    package init(_ pattern: String) throws(SyntaxError) {
        guard pattern.unicodeScalars.count <= Self.maximumPatternLength else {
            throw SyntaxError(description: "the pattern is longer than \(Self.maximumPatternLength) characters")
        }
        var parser = Parser(Array(pattern.unicodeScalars))
        let node = try parser.parseAlternation()
        if parser.position < parser.scalars.count { throw SyntaxError(description: "unbalanced ')' at position \(parser.position + 1)") }
        guard Self.size(of: node) < Self.maximumInstructions else {
            throw SyntaxError(description: "the pattern expands to more than \(Self.maximumInstructions) steps; use fewer or smaller repetitions")
        }
        var program: [Instruction] = []
        try Self.compile(node, into: &program)
        program.append(.match)
        self.program = program
    }

    /// The longest text matched: a longer one cannot be decided (the cost is the text's length
    /// times the pattern's size), and conditions treat it as unknown.
    package static let maximumTextScalars = 64 << 10

    /// Whether the pattern matches somewhere in `text`; nil when the text is too long to decide.
    package func matchesIfDecidable(_ text: String) -> Bool? {
        guard text.unicodeScalars.count <= Self.maximumTextScalars else { return nil }
        return matches(text)
    }

    /// Whether the pattern matches somewhere in `text`.
    package func matches(_ text: String) -> Bool {
        let input = Array(text.unicodeScalars)
        var current: [Int] = []
        var next: [Int] = []
        var marks = [Int](repeating: -1, count: program.count)
        var stamp = 0
        var stack: [Int] = []

        func add(_ start: Int, at index: Int, to list: inout [Int]) -> Bool {
            stack.append(start)
            while let pc = stack.popLast() {
                guard marks[pc] != stamp else { continue }
                marks[pc] = stamp
                switch program[pc] {
                case .jump(let target): stack.append(target)
                case .split(let first, let second):
                    stack.append(second)
                    stack.append(first)
                case .start: if index == 0 { stack.append(pc + 1) }
                case .end: if index == input.count { stack.append(pc + 1) }
                case .match:
                    stack.removeAll()
                    return true
                case .scalar: list.append(pc)
                }
            }
            return false
        }

        for index in 0...input.count {
            stamp += 1
            // Threads carried over from the previous scalar, then a new one starting here (a search).
            for pc in current {
                guard case .scalar(let set) = program[pc], set.contains(input[index - 1]) else { continue }
                if add(pc + 1, at: index, to: &next) { return true }
            }
            if add(0, at: index, to: &next) { return true }
            swap(&current, &next)
            next.removeAll(keepingCapacity: true)
        }
        return false
    }

    /// How many instructions `node` compiles to, saturating: checked before anything is expanded.
    static func size(of node: Node) -> Int {
        let limit = maximumInstructions
        switch node {
        case .empty: return 0
        case .set, .start, .end: return 1
        case .concat(let nodes): return nodes.reduce(0) { min(limit, $0 + size(of: $1)) }
        case .alternate(let nodes): return nodes.reduce(0) { min(limit, $0 + size(of: $1) + 2) }
        case .repeating(let inner, let low, let high):
            let one = size(of: inner)
            guard one > 0 else { return 0 }
            let copies = (high ?? low) + (high == nil ? 1 : 0)
            let (total, overflow) = (one + 2).multipliedReportingOverflow(by: max(copies, 1))
            return overflow ? limit : min(limit, total)
        }
    }

    private static func compile(_ node: Node, into program: inout [Instruction]) throws(SyntaxError) {
        guard program.count < maximumInstructions else {
            throw SyntaxError(description: "the pattern expands to more than \(maximumInstructions) steps; use fewer or smaller repetitions")
        }
        switch node {
        case .empty: break
        case .set(let set): program.append(.scalar(set))
        case .start: program.append(.start)
        case .end: program.append(.end)
        case .concat(let nodes): for node in nodes { try compile(node, into: &program) }
        case .alternate(let nodes):
            var jumps: [Int] = []
            for (offset, node) in nodes.enumerated() {
                if offset < nodes.count - 1 {
                    let split = program.count
                    program.append(.split(split + 1, -1))
                    try compile(node, into: &program)
                    jumps.append(program.count)
                    program.append(.jump(-1))
                    program[split] = .split(split + 1, program.count)
                } else {
                    try compile(node, into: &program)
                }
            }
            for jump in jumps { program[jump] = .jump(program.count) }
        case .repeating(let inner, let min, let max):
            // Repeating what matches only the empty string changes nothing.
            guard size(of: inner) > 0 else { return }
            for _ in 0..<min { try compile(inner, into: &program) }
            if let max {
                for _ in min..<max {
                    let split = program.count
                    program.append(.split(split + 1, -1))
                    try compile(inner, into: &program)
                    program[split] = .split(split + 1, program.count)
                }
            } else {
                let split = program.count
                program.append(.split(split + 1, -1))
                try compile(inner, into: &program)
                program.append(.jump(split))
                program[split] = .split(split + 1, program.count)
            }
        }
    }

    struct Parser {
        let scalars: [Unicode.Scalar]
        var position = 0

        init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

        var peek: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

        mutating func parseAlternation() throws(SyntaxError) -> Node {
            var branches = [try parseConcatenation()]
            while peek == "|" {
                position += 1
                branches.append(try parseConcatenation())
            }
            return branches.count == 1 ? branches[0] : .alternate(branches)
        }

        mutating func parseConcatenation() throws(SyntaxError) -> Node {
            var items: [Node] = []
            while let scalar = peek, scalar != "|", scalar != ")" {
                let atom = try parseAtom()
                items.append(try parseQuantifiers(atom))
            }
            return items.isEmpty ? .empty : items.count == 1 ? items[0] : .concat(items)
        }

        mutating func parseQuantifiers(_ atom: Node) throws(SyntaxError) -> Node {
            var node = atom
            while let scalar = peek {
                let bounds: (Int, Int?)
                switch scalar {
                case "*": bounds = (0, nil)
                case "+": bounds = (1, nil)
                case "?": bounds = (0, 1)
                case "{":
                    guard let parsed = try parseBraces() else { return node }
                    bounds = parsed
                    node = .repeating(node, min: bounds.0, max: bounds.1)
                    if peek == "?" { position += 1 }
                    continue
                default: return node
                }
                position += 1
                if peek == "?" { position += 1 }  // lazy: the same for a yes/no match
                node = .repeating(node, min: bounds.0, max: bounds.1)
            }
            return node
        }

        /// `{m}`, `{m,}`, `{m,n}`; nil (and nothing consumed) when the brace is a literal.
        mutating func parseBraces() throws(SyntaxError) -> (Int, Int?)? {
            guard let close = scalars[position...].firstIndex(of: "}") else { return nil }
            let body = String(String.UnicodeScalarView(scalars[(position + 1)..<close]))
            let parts = body.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            // Digits only (no signs, no spaces): anything else is a literal brace.
            guard parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }), !parts[0].isEmpty, parts[0].count <= 4,
                (parts.count == 1 || parts[1].count <= 4), let min = Int(parts[0])
            else { return nil }
            let max: Int? = parts.count == 1 ? min : (parts[1].isEmpty ? nil : Int(parts[1]))
            guard min <= LinearRegex.maximumRepeat, (max ?? min) <= LinearRegex.maximumRepeat, (max ?? min) >= min else {
                throw SyntaxError(description: "a repetition {\(body)} must be at most \(LinearRegex.maximumRepeat) and in order")
            }
            position = close + 1
            return (min, max)
        }

        mutating func parseAtom() throws(SyntaxError) -> Node {
            let scalar = scalars[position]
            position += 1
            switch scalar {
            case ".": return .set(.any)
            case "^": return .start
            case "$": return .end
            case "(":
                if peek == "?" {
                    guard position + 1 < scalars.count, scalars[position + 1] == ":" else {
                        throw SyntaxError(description: "lookaround and inline flags '(?…)' are not supported: matching must stay linear")
                    }
                    position += 2
                }
                let inner = try parseAlternation()
                guard peek == ")" else { throw SyntaxError(description: "a '(' is not closed") }
                position += 1
                return inner
            case "[": return .set(try parseClass())
            case "\\": return .set(try parseEscape(inClass: false))
            case "*", "+", "?": throw SyntaxError(description: "'\(scalar)' at position \(position) repeats nothing")
            default: return .set(ScalarSet(ranges: [scalar.value...scalar.value]))
            }
        }

        mutating func parseEscape(inClass: Bool) throws(SyntaxError) -> ScalarSet {
            guard let scalar = peek else { throw SyntaxError(description: "the pattern ends with '\\'") }
            position += 1
            switch scalar {
            case "d": return .digit
            case "D": return ScalarSet(ranges: ScalarSet.digit.ranges, negated: true)
            case "w": return .word
            case "W": return ScalarSet(ranges: ScalarSet.word.ranges, negated: true)
            case "s": return .space
            case "S": return ScalarSet(ranges: ScalarSet.space.ranges, negated: true)
            case "n": return ScalarSet(ranges: [10...10])
            case "t": return ScalarSet(ranges: [9...9])
            case "r": return ScalarSet(ranges: [13...13])
            case "1"..."9": throw SyntaxError(description: "backreferences (\\\(scalar)) are not supported: matching must stay linear")
            case "b", "B": throw SyntaxError(description: "word boundaries (\\\(scalar)) are not supported")
            default:
                guard !("a"..."z").contains(scalar), !("A"..."Z").contains(scalar) else {
                    throw SyntaxError(description: "unknown escape \\\(scalar)")
                }
                return ScalarSet(ranges: [scalar.value...scalar.value])
            }
        }

        mutating func parseClass() throws(SyntaxError) -> ScalarSet {
            var set = ScalarSet(ranges: [])
            if peek == "^" {
                set.negated = true
                position += 1
            }
            var first = true
            while let scalar = peek, scalar != "]" || first {
                first = false
                position += 1
                var low: ScalarSet
                if scalar == "\\" { low = try parseEscape(inClass: true) } else { low = ScalarSet(ranges: [scalar.value...scalar.value]) }
                if peek == "-", position + 1 < scalars.count, scalars[position + 1] != "]", !low.negated, low.ranges.count == 1,
                    low.ranges[0].count == 1
                {
                    position += 1
                    let upper = scalars[position]
                    position += 1
                    guard upper.value >= low.ranges[0].lowerBound else { throw SyntaxError(description: "a range [\(scalar)-\(upper)] is reversed") }
                    low = ScalarSet(ranges: [low.ranges[0].lowerBound...upper.value])
                }
                guard !low.negated else { throw SyntaxError(description: "negated escapes (\\D, \\W, \\S) are not supported inside [ ]") }
                set.ranges += low.ranges
            }
            guard peek == "]" else { throw SyntaxError(description: "a '[' is not closed") }
            position += 1
            return set
        }
    }
}
