import Foundation

/// The lines of two tool definitions (pretty JSON, keys sorted) that differ, for an admin deciding
/// whether to approve a changed definition: `-` only in the approved one, `+` only in the new one,
/// two spaces in both. A longest-common-subsequence diff: definitions are small.
enum DefinitionDiff {
    /// Lines compared at most per side; past it the rest is shown as changed.
    static let maximumLines = 2_000

    static func lines(approved: String?, pending: String?) -> [String] {
        let old = pretty(approved)
        let new = pretty(pending)
        let a = Array(old.prefix(maximumLines))
        let b = Array(new.prefix(maximumLines))
        // common[i][j]: length of the longest common subsequence of a[i...] and b[j...].
        var common = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                common[i][j] = a[i] == b[j] ? common[i + 1][j + 1] + 1 : max(common[i + 1][j], common[i][j + 1])
            }
        }
        var result: [String] = []
        var (i, j) = (0, 0)
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                result.append("  " + a[i])
                i += 1
                j += 1
            } else if j < b.count, i == a.count || common[i][j + 1] >= common[i + 1][j] {
                result.append("+ " + b[j])
                j += 1
            } else {
                result.append("- " + a[i])
                i += 1
            }
        }
        result += old.dropFirst(maximumLines).map { "- " + $0 } + new.dropFirst(maximumLines).map { "+ " + $0 }
        return result
    }

    /// Invisible characters are shown as `\u{…}` escapes, so the diff shows what a person cannot see.
    static func pretty(_ text: String?) -> [String] {
        guard let text else { return [] }
        var shown = text
        if let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        {
            shown = String(decoding: data, as: UTF8.self)
        }
        let escaped = shown.unicodeScalars.map {
            ToolDefinition.isInvisible($0) ? "\\u{\(String($0.value, radix: 16, uppercase: true))}" : String($0)
        }
        return escaped.joined().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }
}
