import Foundation

/// An HTTP server's URL whose query may refer to secrets (`https://api.example/mcp?key=${secret://x}`),
/// for servers that take a credential nowhere else. References go in the query only: the host and
/// path are fixed when the server is registered. A resolved value is percent-encoded into the URL.
package struct CredentialURL: Sendable, Equatable {
    package let template: CredentialTemplate

    package init(parsing url: String) throws(CredentialTemplate.ParseError) {
        let template = try CredentialTemplate(parsing: url)
        if !template.references.isEmpty {
            guard let query = url.firstIndex(of: "?"), let reference = url.range(of: "${"), query < reference.lowerBound,
                !url.hasPrefix("secret://"), !url.hasPrefix("oauth://")
            else {
                throw CredentialTemplate.ParseError(description: "references in a url go in its query (after '?'), as ${secret://path}")
            }
        }
        self.template = template
    }

    package var references: [CredentialTemplate.SecretLocator] { template.references }

    /// The URL with a placeholder for each reference: what is checked as a URL.
    package var placeholderURL: String { template.render { _ in "x" } }

    /// The query's items, each value as a template (for the literal-credential check).
    package var queryItems: [(name: String, template: CredentialTemplate)] {
        let text = template.render { "${\($0)}" }
        guard let start = text.firstIndex(of: "?") else { return [] }
        let query = text[text.index(after: start)...].prefix { $0 != "#" }
        return query.split(separator: "&").compactMap { item in
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, let value = try? CredentialTemplate(parsing: String(pair[1])) else { return nil }
            return (String(pair[0]).removingPercentEncoding ?? String(pair[0]), value)
        }
    }

    /// The URL with each reference replaced by `value(of:)`, percent-encoded.
    package func render(_ value: (CredentialTemplate.SecretLocator) throws -> String) rethrows -> String {
        try template.render { locator in try value(locator).addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? "" }
    }

    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
