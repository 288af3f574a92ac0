/// Which of many literal byte strings occur in a text, found in one pass over the text whatever
/// their number (Aho–Corasick: a trie of the literals with failure links, built once per policy
/// version). The engine indexes each wildcard rule by a literal its patterns need (`*x12_*` needs
/// `x12_`), so that a decision tests only the rules whose literal its tool's name contains.
/// (`SecretRedactor` has an automaton of its own: it reports the longest match to replace, in
/// another module; this one reports every literal found.)
struct LiteralIndex: Sendable {
    /// The trie: each node's transitions by byte, its failure link, and the values whose literal
    /// ends here (its own and its failure chain's, gathered when built).
    private var transitions: [[UInt8: Int32]] = [[:]]
    private var failure: [Int32] = [0]
    private var values: [[Int]] = [[]]

    init(_ entries: [(literal: [UInt8], value: Int)]) {
        for (literal, value) in entries {
            var node = 0
            for byte in literal {
                if let next = transitions[node][byte] {
                    node = Int(next)
                } else {
                    transitions.append([:])
                    failure.append(0)
                    values.append([])
                    transitions[node][byte] = Int32(transitions.count - 1)
                    node = transitions.count - 1
                }
            }
            values[node].append(value)
        }
        // Breadth first: a node's failure link is to a shallower node, whose values are complete.
        var queue = transitions[0].values.map { Int($0) }
        var head = 0
        while head < queue.count {
            let node = queue[head]
            head += 1
            for (byte, child) in transitions[node] {
                let child = Int(child)
                queue.append(child)
                var fallback = Int(failure[node])
                while fallback != 0 && transitions[fallback][byte] == nil { fallback = Int(failure[fallback]) }
                let target = node == 0 ? 0 : Int(transitions[fallback][byte] ?? 0)
                failure[child] = Int32(target)
                values[child] += values[target]
            }
        }
    }

    /// Appends the value of every literal that occurs in `text` (once per occurrence).
    func values(in text: [UInt8], into found: inout [Int]) {
        var node = 0
        for byte in text {
            while node != 0 && transitions[node][byte] == nil { node = Int(failure[node]) }
            node = Int(transitions[node][byte] ?? 0)
            if !values[node].isEmpty { found += values[node] }
        }
    }
}
