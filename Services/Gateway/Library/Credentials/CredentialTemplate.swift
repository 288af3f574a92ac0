import Foundation

/// A server setting's value (an `env` or `headers` value) as the registry keeps it: literal text
/// and references to vault secrets, resolved only when the value is used.
///
/// - `secret://github/token`: the latest version of the secret, the whole value.
/// - `secret://github/token#3`: version 3.
/// - `Bearer ${secret://github/token}`: references mixed with literal text.
package struct CredentialTemplate: Sendable, Equatable {
    package enum Part: Sendable, Equatable {
        case literal(String)
        case secret(SecretLocator)
    }

    package var parts: [Part]

    /// A secret of the server's org, by path and optional version.
    package struct SecretLocator: Sendable, Hashable, CustomStringConvertible {
        package var path: String
        package var version: Int?

        package var description: String { "secret://\(path)\(version.map { "#\($0)" } ?? "")" }
    }

    package struct ParseError: Error, Equatable, CustomStringConvertible {
        package var description: String
    }

    static let scheme = "secret://"

    package init(parsing value: String) throws(ParseError) {
        if value.hasPrefix(Self.scheme), !value.contains("${") {
            parts = [.secret(try Self.locator(value.dropFirst(Self.scheme.count)))]
            return
        }
        var parts: [Part] = []
        var rest = Substring(value)
        while let start = rest.range(of: "${" + Self.scheme) {
            if start.lowerBound > rest.startIndex { parts.append(.literal(String(rest[..<start.lowerBound]))) }
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw ParseError(description: "a '${secret://' reference is not closed with '}'")
            }
            parts.append(.secret(try Self.locator(rest[start.upperBound..<end])))
            rest = rest[rest.index(after: end)...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
    }

    private static func locator(_ text: Substring) throws(ParseError) -> SecretLocator {
        var path = text
        var version: Int?
        if let hash = text.firstIndex(of: "#") {
            path = text[..<hash]
            guard let number = Int(text[text.index(after: hash)...]), number > 0 else {
                throw ParseError(description: "secret://\(path.prefix(64)): a version after '#' is a positive number")
            }
            version = number
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/".utf8)
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, path.utf8.count <= 256, path.utf8.allSatisfy(allowed.contains),
            segments.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
        else {
            throw ParseError(
                description: "'secret://\(path.prefix(64))' is not a secret path (segments of letters, digits, '.', '_' and '-' separated by '/')")
        }
        return SecretLocator(path: String(path), version: version)
    }

    /// The secrets this value refers to.
    package var references: [SecretLocator] {
        parts.compactMap { part in
            if case .secret(let locator) = part { return locator }
            return nil
        }
    }

    /// The literal text of the value (everything that is not a reference).
    package var literalText: String {
        parts.map { part in
            if case .literal(let text) = part { return text }
            return ""
        }.joined()
    }

    /// The value with each reference replaced by what `value(of:)` gives.
    package func render(_ value: (SecretLocator) throws -> String) rethrows -> String {
        try parts.map { part in
            switch part {
            case .literal(let text): text
            case .secret(let locator): try value(locator)
            }
        }.joined()
    }
}

extension CredentialTemplate {
    /// A value taken as literal text, whatever it holds.
    package init(literal: String) {
        self.parts = literal.isEmpty ? [] : [.literal(literal)]
    }
}
