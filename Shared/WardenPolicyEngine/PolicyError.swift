/// Why a policy document was refused: where (line and column, 1-based) and which field.
package struct PolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    package var line: Int
    package var column: Int
    /// The field's path in the document, like `rules[2].when[0].regex`.
    package var field: String
    package var message: String

    package init(line: Int, column: Int, field: String, message: String) {
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    package var description: String { "line \(line), column \(column), \(field.isEmpty ? "document" : field): \(message)" }
}
