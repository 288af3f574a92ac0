/// A pattern of tool names, with `*` (any run of characters) and `?` (one character). A pattern
/// with `__` matches whole namespaced names (`github__create_issue`, `github__*`); one without
/// matches the tool's own name on any server (`web_search`, `*write*`).
package struct ToolPattern: Sendable, Equatable, CustomStringConvertible {
    package let description: String
    let namespaced: Bool
    let bytes: [UInt8]
    /// The pattern has no wildcard: it names one tool (the engine looks such rules up by name).
    let isLiteral: Bool

    /// - Parameter whole: match the whole name always (resources: `docs+file:///*`).
    package init(_ text: String, whole: Bool = false) {
        description = text
        namespaced = whole || text.contains("__")
        bytes = Array(text.utf8)
        isLiteral = !bytes.contains(UInt8(ascii: "*")) && !bytes.contains(UInt8(ascii: "?"))
    }

    /// A run of the pattern without a wildcard, which every name it matches contains (empty for a
    /// pattern of wildcards only): the longest in the tool's own part when one has three bytes or
    /// more (`github__*_issue`: `_issue`, which tells rules apart better than a server's prefix),
    /// else the longest.
    var requiredLiteral: [UInt8] {
        let runs = bytes.split(omittingEmptySubsequences: true) { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") }.map(Array.init)
        func namesServer(_ run: [UInt8]) -> Bool { zip(run, run.dropFirst()).contains { $0 == UInt8(ascii: "_") && $1 == UInt8(ascii: "_") } }
        let own = runs.filter { $0.count >= 3 && !namesServer($0) }
        return (own.isEmpty ? runs : own).max { $0.count < $1.count } ?? []
    }

    /// Whether `tool` (a namespaced name, `server__tool`) matches.
    package func matches(_ tool: String) -> Bool { matches(ToolName(tool)) }

    func matches(_ name: ToolName) -> Bool {
        namespaced ? Self.glob(bytes, name.full[...]) : Self.glob(bytes, name.own)
    }

    /// Glob on UTF-8 bytes with one remembered star: linear in practice, names and patterns are short.
    /// (`?` matches one byte; tool names are ASCII.)
    static func glob(_ pattern: [UInt8], _ text: ArraySlice<UInt8>) -> Bool {
        let star = UInt8(ascii: "*"), any = UInt8(ascii: "?")
        var p = 0
        var t = text.startIndex
        var remembered: Int?
        var resume = t
        while t < text.endIndex {
            if p < pattern.count, pattern[p] == any || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == star {
                remembered = p
                resume = t
                p += 1
            } else if let star = remembered {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == star { p += 1 }
        return p == pattern.count
    }

    static func glob(_ pattern: String, _ text: String) -> Bool { glob(Array(pattern.utf8), Array(text.utf8)[...]) }
}

/// A tool's namespaced name as bytes, and its own part (after the server's `__`), computed once per
/// decision.
struct ToolName {
    let text: String
    let full: [UInt8]
    let own: ArraySlice<UInt8>

    init(_ text: String) {
        self.text = text
        full = Array(text.utf8)
        var own = full[...]
        var index = 0
        while index + 1 < full.count {
            if full[index] == UInt8(ascii: "_"), full[index + 1] == UInt8(ascii: "_") {
                own = full[(index + 2)...]
                break
            }
            index += 1
        }
        self.own = own
    }

    var ownText: String { String(decoding: own, as: UTF8.self) }
}
