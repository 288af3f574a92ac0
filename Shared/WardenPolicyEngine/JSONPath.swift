import WardenMCP

/// A path into a tool call's arguments: `$`, `$.customer_id`, `$.repo.owner`, `$.items[0]`,
/// `$['odd name']`. Checked when a policy is applied; evaluation walks the parsed arguments.
package struct JSONPath: Sendable, Equatable, CustomStringConvertible {
    enum Step: Sendable, Equatable {
        case member(String)
        case index(Int)
    }

    let steps: [Step]
    package let description: String

    package struct SyntaxError: Error, Equatable, CustomStringConvertible {
        package var description: String
    }

    /// `$`: the whole of the arguments.
    package static let root = JSONPath(steps: [], description: "$")

    private init(steps: [Step], description: String) {
        self.steps = steps
        self.description = description
    }

    package init(_ text: String) throws(SyntaxError) {
        description = text
        guard text.hasPrefix("$") else { throw SyntaxError(description: "a path starts with '$' (like $.customer_id)") }
        var steps: [Step] = []
        var rest = text.dropFirst()
        while let first = rest.first {
            if first == "." {
                rest = rest.dropFirst()
                let name = rest.prefix { $0 != "." && $0 != "[" }
                guard !name.isEmpty else { throw SyntaxError(description: "an empty member name in \(text)") }
                steps.append(.member(String(name)))
                rest = rest.dropFirst(name.count)
            } else if first == "[" {
                guard let close = rest.firstIndex(of: "]") else { throw SyntaxError(description: "a '[' is not closed in \(text)") }
                let inner = rest[rest.index(after: rest.startIndex)..<close]
                if let index = Int(inner), index >= 0 {
                    steps.append(.index(index))
                } else if inner.count >= 2, let quote = inner.first, quote == "'" || quote == "\"", inner.last == quote {
                    steps.append(.member(String(inner.dropFirst().dropLast())))
                } else {
                    throw SyntaxError(description: "'[\(inner)]' in \(text) is neither an index nor a quoted name")
                }
                rest = rest[rest.index(after: close)...]
            } else {
                throw SyntaxError(description: "unexpected '\(first)' in \(text): use .name, [0] or ['name']")
            }
        }
        guard steps.count <= 32 else { throw SyntaxError(description: "\(text) is deeper than 32 steps") }
        self.steps = steps
    }

    /// The value at this path, or nil when there is none.
    package func value(in root: JSONValue) -> JSONValue? {
        var current = root
        for step in steps {
            switch (step, current) {
            case (.member(let name), .object(let members)):
                guard let found = members.first(where: { $0.key == name }) else { return nil }
                current = found.value
            case (.index(let index), .array(let items)):
                guard index < items.count else { return nil }
                current = items[index]
            default: return nil
            }
        }
        return current
    }

    /// `root` with the value at this path (if there is one) replaced by `replacement`.
    package func replacing(in root: JSONValue, with replacement: JSONValue) -> JSONValue {
        func replace(_ value: JSONValue, _ steps: ArraySlice<Step>) -> JSONValue {
            guard let step = steps.first else { return replacement }
            switch (step, value) {
            case (.member(let name), .object(let members)):
                return .object(members.map { $0.key == name ? ($0.key, replace($0.value, steps.dropFirst())) : $0 })
            case (.index(let index), .array(var items)) where index < items.count:
                items[index] = replace(items[index], steps.dropFirst())
                return .array(items)
            default: return value
            }
        }
        return replace(root, steps[...])
    }
}
