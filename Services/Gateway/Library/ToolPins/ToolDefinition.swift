import Crypto
import Foundation
import WardenMCP

/// What a model reads of a tool, as pinned: its title, description, input and output schemas and
/// annotations (the name is the pin's key: a tool under a new name is a new tool). The fingerprint
/// is SHA-256 over the canonical JSON (object keys sorted), so a server reordering keys changes
/// nothing while any change of content does.
package struct ToolDefinition: Sendable, Equatable {
    /// The fields pinned, in canonical order.
    static let pinnedFields = ["annotations", "description", "inputSchema", "outputSchema", "title"]

    package let content: JSONValue
    package let fingerprint: String
    /// Characters a person would not see (zero-width, direction-changing, tag characters), where
    /// they are: such a definition is held for approval even under trust on first use.
    package let flags: [String]

    package init(listed entry: JSONValue) {
        let members = Self.pinnedFields.compactMap { field in entry[field].map { (key: field, value: Self.canonical($0)) } }
        content = .object(members)
        fingerprint = SHA256.hash(data: content.serialized()).map { String(format: "%02x", $0) }.joined()
        var flags: [String] = []
        if let name = entry["name"]?.stringValue { Self.scan(name, at: "name", into: &flags) }
        Self.scan(content, at: "", into: &flags)
        self.flags = flags
    }

    /// The definition as stored: `content`'s canonical JSON text.
    package var text: String { String(decoding: content.serialized(), as: UTF8.self) }

    static func canonical(_ value: JSONValue) -> JSONValue { value.canonical }

    /// Code points that change how text reads without being seen: zero-width characters and
    /// joiners, the bidirectional controls, the tag block and variation selectors (both can spell
    /// hidden data), soft hyphens, fillers that render blank.
    package static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B...0x180E, 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2064,
            0x2066...0x2069, 0x3164, 0xFE00...0xFE0F, 0xFEFF, 0xFFA0, 0xE0000...0xE007F, 0xE0100...0xE01EF:
            true
        default: false
        }
    }

    private static func scan(_ value: JSONValue, at path: String, into flags: inout [String]) {
        switch value {
        case .string(let text): scan(text, at: path, into: &flags)
        case .array(let values):
            for (index, element) in values.enumerated() { scan(element, at: "\(path)[\(index)]", into: &flags) }
        case .object(let members):
            for member in members {
                scan(.string(member.key), at: path.isEmpty ? member.key : "\(path).\(member.key) (key)", into: &flags)
                scan(member.value, at: path.isEmpty ? member.key : "\(path).\(member.key)", into: &flags)
            }
        default: break
        }
    }

    private static func scan(_ text: String, at path: String, into flags: inout [String]) {
        guard flags.count < 20, let scalar = text.unicodeScalars.first(where: isInvisible) else { return }
        flags.append("\(path): invisible character U+\(String(format: "%04X", scalar.value))")
    }
}
